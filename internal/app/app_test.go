package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/app"
)

// TestWebChat runs the whole agent in-process with a web chat and no
// cluster: the page is mounted at its HTTPPrefix (/chat/<name>/), a typed
// command goes through the router (the "help" built-in) and its reply
// comes back on the event stream; then the agent stops on time although a
// stream is open.
func TestWebChat(t *testing.T) {
	t.Setenv("TEST_WEBCHAT_TOKEN", "agent-token-0123456789")
	cfgPath := filepath.Join(t.TempDir(), "kubechat.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`
cluster:
  name: test
http:
  listen: 127.0.0.1:0
  shutdownTimeout: 30s
platforms:
  - name: web
    type: webchat
    settings:
      auth: token
      token: ${TEST_WEBCHAT_TOKEN}
      channels: [ops]
channels:
  - name: ops
    platform: web
`), 0o600))
	cfg, err := app.Load(cfgPath)
	require.NoError(t, err)
	a, err := app.New(cfg, slog.New(slog.DiscardHandler), app.Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	base := "http://" + a.HTTPAddr() + "/chat/web"
	auth := func(r *http.Request) { r.Header.Set("Authorization", "Bearer agent-token-0123456789") }

	// The stream: opened as soon as the server answers. It has its own
	// context, so that only the agent can end it.
	var stream *http.Response
	require.Eventually(t, func() bool {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/api/events", nil)
		require.NoError(t, err)
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return false
		}
		stream = resp
		return true
	}, 10*time.Second, 20*time.Millisecond)
	defer stream.Body.Close()
	events := make(chan string, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- data
			}
		}
	}()

	// The router answers once Listen runs.
	require.Eventually(t, func() bool {
		req, err := http.NewRequest(http.MethodPost, base+"/api/messages", strings.NewReader(`{"channel":"ops","text":"@kubechat help"}`))
		require.NoError(t, err)
		auth(req)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusAccepted
	}, 10*time.Second, 20*time.Millisecond)
	var command, reply struct {
		ID, Thread, Title, Text string
	}
	timeout := time.After(10 * time.Second)
	for reply.Title == "" {
		select {
		case data, ok := <-events:
			require.True(t, ok, "the stream ended early")
			var m struct{ ID, Thread, Title, Text, Kind string }
			require.NoError(t, json.Unmarshal([]byte(data), &m))
			switch {
			case m.Kind == "user":
				command.ID, command.Text = m.ID, m.Text
			case m.Kind == "bot" && m.Title != "":
				reply.ID, reply.Thread, reply.Title = m.ID, m.Thread, m.Title
			}
		case <-timeout:
			t.Fatal("no reply on the stream")
		}
	}
	require.Equal(t, "@kubechat help", command.Text)
	require.Equal(t, "kubechat help", reply.Title)
	require.Equal(t, command.ID, reply.Thread, "the reply is in the command's thread")

	// Stopping ends the open stream, so the HTTP server shuts down in time.
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(40 * time.Second):
		t.Fatal("the agent did not stop")
	}
	require.Less(t, time.Since(start), 15*time.Second, "an open stream held the shutdown back for its 30 s grace")
}
