// Package redact keeps secret values out of anything the agent shows: it
// collects the values of Kubernetes Secrets as they pass through a client's
// transport, and replaces them (raw and base64-encoded) with "***" in output.
package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Mask replaces every secret value.
const Mask = "***"

// MinRawLength is the shortest decoded value replaced as free text: shorter
// values ("1", "true") would mangle unrelated output. Their base64 forms,
// which is how they appear in Secret manifests, are always replaced.
const MinRawLength = 4

// Set is a concurrency-safe set of secret values.
type Set struct {
	mu     sync.Mutex
	values map[string]struct{}
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{values: map[string]struct{}{}} }

// Add records a secret value. Its base64 encodings are recorded too.
func (s *Set) Add(value string) {
	if value == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(value) >= MinRawLength {
		s.values[value] = struct{}{}
		// Multi-line values (certificates) also show up line by line.
		for _, line := range strings.Split(value, "\n") {
			if line = strings.TrimSpace(line); len(line) >= 16 {
				s.values[line] = struct{}{}
			}
		}
	}
	s.values[base64.StdEncoding.EncodeToString([]byte(value))] = struct{}{}
}

// AddBase64 records a value given in base64, as in a Secret's data.
func (s *Set) AddBase64(encoded string) {
	s.mu.Lock()
	if encoded != "" {
		s.values[encoded] = struct{}{}
	}
	s.mu.Unlock()
	if raw, err := base64.StdEncoding.DecodeString(encoded); err == nil {
		s.Add(string(raw))
	}
}

// Len is the number of recorded strings.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.values)
}

// Redact replaces every recorded value in text with Mask, longest first.
func (s *Set) Redact(text string) string {
	s.mu.Lock()
	vals := make([]string, 0, len(s.values))
	for v := range s.values {
		vals = append(vals, v)
	}
	s.mu.Unlock()
	slices.SortFunc(vals, func(a, b string) int { return len(b) - len(a) })
	for _, v := range vals {
		text = strings.ReplaceAll(text, v, Mask)
	}
	return text
}

// RedactCut is Redact for text that was cut short: a value the cut split
// leaves its beginning at the end of text, which Redact cannot recognise,
// so a tail that begins any recorded value is removed as well.
func (s *Set) RedactCut(text string) string {
	text = s.Redact(text)
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := 0
	for v := range s.values {
		for k := min(len(v)-1, len(text)); k > cut; k-- {
			if strings.HasSuffix(text, v[:k]) {
				cut = k
				break
			}
		}
	}
	return text[:len(text)-cut]
}

// Transport wraps rt so that every Secret in a JSON response body (a Secret,
// a list, or a Table with objects) has its values added to set. The body
// itself is passed on unchanged.
func Transport(set *Set, rt http.RoundTripper) http.RoundTripper {
	return roundTripper{set: set, next: rt}
}

type roundTripper struct {
	set  *Set
	next http.RoundTripper
}

// maxScan bounds the bytes of one response inspected for secrets.
const maxScan = 64 << 20

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.Body == nil || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		return resp, err
	}
	if strings.Contains(req.URL.RawQuery, "watch=true") || req.URL.Query().Get("follow") == "true" {
		return resp, nil // streams are not buffered; watches of Secrets are refused by policy
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxScan+1))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if bytes.Contains(body, []byte(`"Secret`)) || bytes.Contains(body, []byte(`"data"`)) {
		var v any
		if json.Unmarshal(body, &v) == nil {
			t.set.collect(v, false)
		}
	}
	return resp, nil
}

// AddManifest records the values of every Secret in a YAML or JSON
// manifest of one or more documents, such as a Helm release's rendered
// manifest. A document that does not parse is skipped: what cannot be read
// as a Secret reveals no value.
func (s *Set) AddManifest(manifest string) {
	if !strings.Contains(manifest, "Secret") {
		return
	}
	dec := yaml.NewDecoder(strings.NewReader(manifest))
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			// The decoder cannot resume after a syntax error; fall back to
			// parsing the documents one by one.
			for _, part := range strings.Split(manifest, "\n---") {
				var one any
				if yaml.Unmarshal([]byte(part), &one) == nil {
					s.collect(one, false)
				}
			}
			return
		}
		s.collect(doc, false)
	}
}

// collect walks a decoded JSON or YAML value and records the data of every
// object that is a Secret (by kind, or as an item of a SecretList).
func (s *Set) collect(v any, isSecret bool) {
	switch x := v.(type) {
	case map[string]any:
		kind, _ := x["kind"].(string)
		if kind == "Secret" {
			isSecret = true
		}
		if isSecret {
			if data, ok := x["data"].(map[string]any); ok {
				for _, val := range data {
					if str, ok := val.(string); ok {
						s.AddBase64(str)
					}
				}
			}
			if data, ok := x["stringData"].(map[string]any); ok {
				for _, val := range data {
					if str, ok := val.(string); ok {
						s.Add(str)
					}
				}
			}
		}
		itemsAreSecrets := kind == "SecretList"
		for k, child := range x {
			switch {
			case k == "items" && itemsAreSecrets:
				s.collect(child, true)
			case k == "data" || k == "stringData":
			default:
				s.collect(child, false)
			}
		}
	case []any:
		for _, child := range x {
			s.collect(child, isSecret)
		}
	}
}
