package webchat

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/chattest"
	"github.com/kubechat/kubechat/internal/chat/chattest/fake"
	"github.com/kubechat/kubechat/internal/config"
)

// newPlatform builds a web chat from settings YAML.
func newPlatform(t *testing.T, settings string) *platform {
	t.Helper()
	raw, err := config.RawFromYAML(settings)
	require.NoError(t, err)
	p, err := New("ops", raw, chat.Deps{Cluster: "test-cluster"})
	require.NoError(t, err)
	return p.(*platform)
}

// serve mounts p on a loopback server as the app does, at HTTPPrefix.
func serve(t *testing.T, p *platform) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(p.HTTPPrefix()+"/", http.StripPrefix(p.HTTPPrefix(), p.HTTPHandler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections() // streams never end by themselves
		srv.Close()
	})
	return srv
}

// listen runs p.Listen with h until the test ends.
func listen(t *testing.T, p *platform, h chat.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Listen(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, p.ready, 5*time.Second, 5*time.Millisecond)
}

// credentials sign a request in.
type credentials func(*http.Request)

func bearer(token string) credentials {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func basic(user, password string) credentials {
	return func(r *http.Request) { r.SetBasicAuth(user, password) }
}

// client does what the page does: it keeps the event stream open, builds
// the channels' messages from it and, when the stream is cut, reconnects
// with the id of the last event it got, as EventSource does. It POSTs what
// people type and click.
type client struct {
	t    *testing.T
	base string // the page's address, without the final slash
	srv  *httptest.Server
	http *http.Client
	auth credentials
	// as signs a request in as the user named in a conformance case.
	as func(user string) credentials

	mu      sync.Mutex
	changes fake.Signal
	msgs    map[string]wireMessage
	last    string         // the last event id
	seen    map[string]int // how often each event id arrived
	conns   int            // streams opened
	resets  int
	refused []int // statuses of refused stream requests
}

func newClient(t *testing.T, srv *httptest.Server, p *platform, auth credentials) *client {
	t.Helper()
	c := &client{
		t: t, base: srv.URL + p.HTTPPrefix(), srv: srv, auth: auth,
		http: &http.Client{Transport: &http.Transport{}},
		msgs: map[string]wireMessage{}, seen: map[string]int{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		c.changes.Close()
	})
	return c
}

// run keeps a stream open until ctx ends.
func (c *client) run(ctx context.Context) {
	for ctx.Err() == nil {
		c.stream(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stream reads one event stream until it ends.
func (c *client) stream(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/events", nil)
	if err != nil {
		return
	}
	c.auth(req)
	req.Header.Set("Accept", "text/event-stream")
	c.mu.Lock()
	if c.last != "" {
		req.Header.Set("Last-Event-ID", c.last)
	}
	c.mu.Unlock()
	resp, err := c.http.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		c.update(func() { c.refused = append(c.refused, resp.StatusCode) })
		return
	}
	c.update(func() { c.conns++ })
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var id, kind string
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data.Len() > 0 { // as EventSource: no data, no event
				c.dispatch(id, kind, data.Bytes())
			}
			id, kind = "", ""
			data.Reset()
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id = value
		case "event":
			kind = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		}
	}
}

// dispatch applies one event, as the page does.
func (c *client) dispatch(id, kind string, data []byte) {
	c.update(func() {
		switch kind {
		case "", "message":
			var m wireMessage
			if err := json.Unmarshal(data, &m); err != nil {
				c.t.Errorf("event %s is not a message: %v: %s", id, err, data)
				return
			}
			c.msgs[m.ID] = m
			c.seen[id]++
			if id != "" {
				c.last = id
			}
		case "reset":
			c.resets++
			clear(c.msgs)
		}
	})
}

func (c *client) update(f func()) {
	c.mu.Lock()
	f()
	c.mu.Unlock()
	c.changes.Notify()
}

// wait blocks until cond, run with the client's lock held, holds.
func (c *client) wait(cond func() bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.changes.Wait(ctx, &c.mu, cond)
}

// sync waits until the stream has delivered every event the server has
// sent so far, so that what the client holds is what a page shows now.
func (c *client) sync() {
	var s session
	if status := c.get("/api/session", c.auth, &s); status != http.StatusOK {
		c.t.Errorf("GET /api/session: %d", status)
		return
	}
	if s.Last == "" {
		return
	}
	want := seqOf(s.Last)
	if err := c.wait(func() bool { return seqOf(c.last) >= want }); err != nil {
		c.t.Errorf("the stream did not deliver event %s (last: %s): %v", s.Last, c.last, err)
	}
}

func seqOf(id string) uint64 {
	_, n, _ := strings.Cut(id, "-")
	seq, _ := strconv.ParseUint(n, 10, 64)
	return seq
}

// get GETs path as auth and decodes a JSON answer into out (when not nil).
func (c *client) get(path string, auth credentials, out any) int {
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	require.NoError(c.t, err)
	if auth != nil {
		auth(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Errorf("GET %s: %v", path, err)
		return 0
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			c.t.Errorf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// post POSTs body as JSON as auth; it returns the status and the answer.
func (c *client) post(path string, auth credentials, body any, header ...string) (int, string) {
	b, err := json.Marshal(body)
	require.NoError(c.t, err)
	if s, ok := body.(string); ok {
		b = []byte(s)
	}
	req, err := http.NewRequest(http.MethodPost, c.base+path, bytes.NewReader(b))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if auth != nil {
		auth(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

// messages is what the client holds of channel, in posting order.
func (c *client) messages(channel string) []wireMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []wireMessage
	for _, m := range c.msgs {
		if m.Channel == channel {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b wireMessage) int { return cmp.Compare(a.Pos, b.Pos) })
	return out
}

// The chattest.Fake side of the client.

// Messages are the channel's messages as the page shows them (files apart).
func (c *client) Messages(channel string) []chattest.Posted {
	c.sync()
	var out []chattest.Posted
	for _, m := range c.messages(channel) {
		if m.Kind == kindFile {
			continue
		}
		out = append(out, chattest.Posted{ID: m.ID, Thread: m.Thread, Text: m.message().PlainText(), Edits: m.Edits})
	}
	return out
}

// Files are the channel's uploads, downloaded as the page's link does.
func (c *client) Files(channel string) []chattest.Uploaded {
	c.sync()
	var out []chattest.Uploaded
	for _, m := range c.messages(channel) {
		if m.Kind != kindFile {
			continue
		}
		req, err := http.NewRequest(http.MethodGet, c.base+"/"+m.File.URL, nil)
		require.NoError(c.t, err)
		c.auth(req)
		resp, err := c.http.Do(req)
		if err != nil {
			c.t.Errorf("download %s: %v", m.File.URL, err)
			continue
		}
		content, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			c.t.Errorf("download %s: %d %s", m.File.URL, resp.StatusCode, content)
		}
		out = append(out, chattest.Uploaded{Name: m.File.Name, Content: string(content), Thread: m.Thread})
	}
	return out
}

// Mention types "@kubechat <text>" into the channel as user.
func (c *client) Mention(channel, user, text string) error {
	status, answer := c.post("/api/messages", c.as(user), postRequest{Channel: channel, Text: "@kubechat " + text})
	if status != http.StatusAccepted {
		return fmt.Errorf("POST /api/messages: %d %s", status, answer)
	}
	return nil
}

// Click clicks the action of a message as user.
func (c *client) Click(channel, messageID, user, actionID, value string) error {
	status, answer := c.post("/api/actions", c.as(user), actionRequest{Channel: channel, Message: messageID, Action: actionID, Value: value})
	if status != http.StatusAccepted {
		return fmt.Errorf("POST /api/actions: %d %s", status, answer)
	}
	return nil
}

// FailNext does nothing: the web chat calls no remote API (Setup.Local).
func (c *client) FailNext(int, int, time.Duration) {}

// Drop cuts every connection to the server without a goodbye: the live
// stream breaks, and the client must reconnect.
func (c *client) Drop() { c.srv.CloseClientConnections() }

// Connections is how many streams the client has opened.
func (c *client) Connections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns
}
