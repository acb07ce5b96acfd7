package redact

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedact(t *testing.T) {
	s := NewSet()
	s.AddBase64(base64.StdEncoding.EncodeToString([]byte("hunter22")))
	s.Add("x") // short: replaced only where it stands alone
	require.Equal(t, "password: ***\nraw: ***\nxylophone stays\nalone: ***\nb64 of x: ***\nquoted: \"***\"",
		s.Redact("password: aHVudGVyMjI=\nraw: hunter22\nxylophone stays\nalone: x\nb64 of x: eA==\nquoted: \"x\""))
}

func TestTransportCollectsSecrets(t *testing.T) {
	bodies := map[string]string{
		"/secret":  `{"kind":"Secret","data":{"a":"` + base64.StdEncoding.EncodeToString([]byte("s3cr3t-one")) + `"},"stringData":{"b":"plain-two"}}`,
		"/list":    `{"kind":"SecretList","items":[{"data":{"c":"` + base64.StdEncoding.EncodeToString([]byte("third-value")) + `"}}]}`,
		"/table":   `{"kind":"Table","rows":[{"object":{"kind":"Secret","data":{"d":"` + base64.StdEncoding.EncodeToString([]byte("fourth-val")) + `"}}}]}`,
		"/cm":      `{"kind":"ConfigMap","data":{"e":"not-secret"}}`,
		"/podlist": `{"kind":"PodList","items":[{"data":{"f":"bm90LXNlY3JldA=="}}]}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, bodies[r.URL.Path])
	}))
	defer srv.Close()
	set := NewSet()
	c := &http.Client{Transport: Transport(set, http.DefaultTransport)}
	for path, want := range bodies {
		resp, err := c.Get(srv.URL + path)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, want, string(b), "the body passes unchanged")
	}
	out := set.Redact("s3cr3t-one plain-two third-value fourth-val not-secret")
	require.Equal(t, "*** *** *** *** not-secret", out)
}

func TestAddManifest(t *testing.T) {
	s := NewSet()
	s.AddManifest(`---
# Source: web/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: web-db
stringData:
  password: "rendered-password-1"
data:
  token: ` + base64.StdEncoding.EncodeToString([]byte("token-value-22")) + `
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: not-a-secret
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Secret
    stringData: {key: "listed-secret-333"}
`)
	out := s.Redact("rendered-password-1 token-value-22 listed-secret-333 not-a-secret")
	if out != "*** *** *** not-a-secret" {
		t.Fatalf("got %q", out)
	}
	broken := NewSet()
	broken.AddManifest("kind: Secret\nstringData: {a: \"unterminated-value\"\n---\nkind: Secret\nstringData:\n  b: second-doc-value\n")
	if got := broken.Redact("second-doc-value"); got != "***" {
		t.Fatalf("a document after a broken one is still read: %q", got)
	}
}

// TestRedactCut: output cut inside a secret value shows none of it.
func TestRedactCut(t *testing.T) {
	s := NewSet()
	s.Add("hunter2-correct-horse")
	require.Equal(t, "password: ***\nother: hun", s.Redact("password: hunter2-correct-horse\nother: hun"))
	require.Equal(t, "password: ***\nother: ", s.RedactCut("password: hunter2-correct-horse\nother: hun"))
	require.Equal(t, "token: ", s.RedactCut("token: aHVudGVyMi1jb3JyZWN0LWhvcnNl"[:20]), "a cut base64 form too")
	require.Equal(t, "no secret here", s.RedactCut("no secret here"))
}
