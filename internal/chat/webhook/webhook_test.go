package webhook

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/chattest"
	"github.com/kubechat/kubechat/internal/config"
)

func newPlatform(t *testing.T, yaml string) chat.Platform {
	t.Helper()
	raw, err := config.RawFromYAML(yaml)
	require.NoError(t, err)
	p, err := New("hook", raw, chat.Deps{})
	require.NoError(t, err)
	return p
}

func TestPostAndUpdateSigned(t *testing.T) {
	t.Setenv("HOOK_SECRET", "s3cret-signing-key")
	var got []Payload
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		require.True(t, Verify("s3cret-signing-key", r.Header, body))
		require.Equal(t, "yes", r.Header.Get("X-Team"))
		var p Payload
		require.NoError(t, json.Unmarshal(body, &p))
		got = append(got, p)
	}))
	defer srv.Close()
	p := newPlatform(t, "url: "+srv.URL+"\nsigningSecret: ${HOOK_SECRET}\nheaders: {X-Team: yes}\n")
	ref, err := p.Post(t.Context(), chat.Channel{Name: "alerts", ID: "alerts"}, chat.Message{Title: "Pod x failing", Level: chat.LevelError})
	require.NoError(t, err)
	_, err = p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: "Pod x resolved", Replace: &ref})
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "post", got[0].Action)
	require.Equal(t, "update", got[1].Action)
	require.Equal(t, got[0].ID, got[1].ID, "an edit names the original message")
	require.Equal(t, "Pod x failing", got[0].Text)
}

func TestStatusClassification(t *testing.T) {
	status := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status == 429 {
			w.Header().Set("Retry-After", "3")
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	p := newPlatform(t, "url: "+srv.URL+"/hook?token=abc\n")
	for _, tc := range []struct {
		status    int
		permanent bool
	}{{400, true}, {401, true}, {403, true}, {404, true}, {410, true}, {429, false}, {500, false}, {502, false}, {503, false}} {
		status = tc.status
		_, err := p.Post(t.Context(), chat.Channel{ID: "c"}, chat.Message{Title: "t"})
		require.Error(t, err)
		require.Equal(t, tc.permanent, chat.IsPermanent(err), "status %d", tc.status)
		require.NotContains(t, err.Error(), "token=abc")
		if tc.status == 429 {
			d, ok := chat.RetryAfterOf(err)
			require.True(t, ok)
			require.Equal(t, "3s", d.String())
		}
	}
	srv.Close()
	_, err := p.Post(t.Context(), chat.Channel{ID: "c"}, chat.Message{Title: "t"})
	require.Error(t, err)
	require.False(t, chat.IsPermanent(err), "a connection error is retryable")
	require.False(t, strings.Contains(err.Error(), "token=abc"), "the URL never reaches an error: %v", err)
}

func TestSettingsErrors(t *testing.T) {
	for yaml, want := range map[string]string{
		"url: ftp://x\n":           `settings.url: "ftp://x" is not an http(s) URL`,
		"{}\n":                     `settings.url: "" is not an http(s) URL`,
		"url: http://x\nsecret: y": `unknown field "secret"`,
	} {
		raw, err := config.RawFromYAML(yaml)
		require.NoError(t, err)
		_, err = New("hook", raw, chat.Deps{})
		require.ErrorContains(t, err, want)
	}
}

// TestRetriesKeepOneID: every attempt of one message, whether its answer
// was lost or refused, carries the same id and Idempotency-Key, and an
// edit names that id with a key of its own.
func TestRetriesKeepOneID(t *testing.T) {
	var mu sync.Mutex
	var ids, keys []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p Payload
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		defer mu.Unlock()
		calls++
		ids, keys = append(ids, p.Action+":"+p.ID), append(keys, r.Header.Get("Idempotency-Key"))
		if calls < 3 {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	p := newPlatform(t, "url: "+srv.URL+"\n")
	m := chat.Message{Title: "Pod web is failing", Key: "k-0123456789abcdef01234567"}
	ref, _, err := chattest.Deliver(t.Context(), p, chat.Channel{ID: "alerts"}, m, chat.Backoff{Initial: time.Millisecond, Max: time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, m.Key, ref.ID)
	_, err = p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: "Resolved", Key: "k-resolved", Replace: &ref})
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"post:" + m.Key, "post:" + m.Key, "post:" + m.Key, "update:" + m.Key}, ids)
	require.Equal(t, []string{m.Key, m.Key, m.Key, "update.k-resolved"}, keys)
}
