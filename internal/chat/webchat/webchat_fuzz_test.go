package webchat

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
)

// FuzzInbound: whatever a browser POSTs, the web chat answers with a
// status it documents and never panics; only an accepted command shows up
// in the channel.
func FuzzInbound(f *testing.F) {
	for _, seed := range []string{
		`{"channel":"alerts","text":"@kubechat kubectl get pods"}`,
		`{"channel":"alerts","text":"x","thread":"nope"}`,
		`{"channel":"alerts","message":"m","action":"a","value":"v"}`,
		`{"channel":5}`, `[]`, `{`, ``, `null`, `{"text":"\u0000@kubechat"}`,
	} {
		f.Add("messages", seed)
		f.Add("actions", seed)
	}
	raw, err := config.RawFromYAML("auth: none\nchannels: [alerts]\n")
	if err != nil {
		f.Fatal(err)
	}
	pl, err := New("fuzz", raw, chat.Deps{})
	if err != nil {
		f.Fatal(err)
	}
	p := pl.(*platform)
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	go func() {
		_ = p.Listen(ctx, chat.HandlerFunc(func(context.Context, chat.Inbound) chat.Message { return chat.Message{} }))
	}()
	for !p.ready() {
		select {
		case <-ctx.Done():
			return
		default:
		}
	}
	h := p.HTTPHandler()
	allowed := map[int]bool{202: true, 400: true, 404: true, 413: true}
	f.Fuzz(func(t *testing.T, endpoint, body string) {
		if endpoint != "messages" && endpoint != "actions" {
			return
		}
		before := p.hub.last()
		req := httptest.NewRequest(http.MethodPost, "/api/"+endpoint, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("POST /api/%s %q: status %d: %s", endpoint, body, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusAccepted && endpoint == "messages" && p.hub.last() != before {
			t.Fatalf("a refused message was shown: %q", body)
		}
	})
}
