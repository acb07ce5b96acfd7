// Package chattest is the conformance suite every chat platform adapter
// runs against its own fake server (as Alertmanager's notify tests do for
// its integrations). It checks what users see, not how an adapter is
// built: a post, a thread reply, an edit in place, long output split with
// balanced fences or uploaded as a file, a button click and a mention
// reaching the handler and being answered in the thread, a reconnect
// after a cut connection, 429 and 5xx handling, and that no credential
// leaks into an error. A platform the agent serves itself (Setup.Local)
// skips the cases that need a remote API to fail, and a sink (Setup.Sink)
// the cases of chat features it does not have, each saying so.
package chattest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

// Posted is one message as the fake platform holds it, edits applied.
type Posted struct {
	ID string
	// Thread is the id of the thread root, or "" for a top-level message.
	Thread string
	// Text is everything a reader sees in the message, as plain text.
	Text  string
	Edits int
}

// Uploaded is one file as the fake platform holds it.
type Uploaded struct {
	Name    string
	Content string
	// Thread is the message the file was attached to, or its thread root.
	Thread string
}

// Fake is a platform's fake server as the suite drives it. Channels are
// named as in Setup.Channel.ID.
type Fake interface {
	// Messages is what the channel holds, in posting order.
	Messages(channel string) []Posted
	// Files is what was uploaded to the channel.
	Files(channel string) []Uploaded
	// Mention has user address the bot in channel with text, as the platform delivers it.
	Mention(channel, user, text string) error
	// Click has user click the button (or choose value in the select) with actionID on a message.
	Click(channel, messageID, user, actionID, value string) error
	// FailNext makes the next n API calls fail with status; a 429 carries retryAfter.
	FailNext(n, status int, retryAfter time.Duration)
	// Drop cuts the adapter's live connections without a goodbye.
	Drop()
	// Connections is how many connections the adapter has opened so far
	// (unused for Connectionless platforms).
	Connections() int
}

// OpenConnections is what a Fake offers when its adapter dials out (a
// gateway, a websocket): how many of those connections are open now.
// RunConformance then checks that none is left once Listen returns: only
// the leader listens, and a connection that outlives Listen keeps
// receiving, and reconnecting, for a replica that is no longer it.
type OpenConnections interface {
	Connected() int
}

// Setup is one adapter wired to its fake.
type Setup struct {
	Platform chat.Platform
	Fake     Fake
	// Channel is a channel the bot is in.
	Channel chat.Channel
	// CanUpload is false for platforms without file upload: long output
	// must then arrive split, whole, over several messages.
	CanUpload bool
	// Secrets are the credentials the adapter holds; no error may contain one.
	Secrets []string
	// Connectionless platforms receive over HTTP (Teams): they hold no
	// connection to cut, and Ready tells when Listen accepts requests.
	Connectionless bool
	Ready          func() bool
	// Local platforms are served by the agent itself (the web chat): Post
	// calls no remote API, so there is no 429, 5xx or 4xx to inject and
	// FailNext does nothing. The cases built on FailNext are skipped; "unknown
	// channel" still checks, for every platform, that a post to a channel
	// the platform does not have fails for good, names it and leaks no secret.
	Local bool
	// Sink platforms deliver alerts to a service that is not a chat
	// (PagerDuty, a search index): they receive nothing and have no
	// threads, file uploads or size limits. The suite runs the delivery
	// cases on them (post, edit, 429, 5xx and 4xx, unknown channel, no
	// secret in errors, Listen returns on cancel) and skips the others,
	// naming the missing feature.
	Sink bool
	// Permalink is the address the service gives a delivered message, for
	// a platform whose messages have one (chat.Permalinker); nil for one
	// that cannot link to its messages, which then answers "" or is no
	// Permalinker.
	Permalink func(ref chat.MessageRef) string
}

// timeout bounds each wait of the suite.
const timeout = 30 * time.Second

// RunConformance runs the suite; newSetup builds a fresh adapter and fake for each case.
func RunConformance(t *testing.T, newSetup func(t *testing.T) Setup) {
	t.Run("post", func(t *testing.T) { testPost(t, newSetup(t)) })
	t.Run("thread reply", func(t *testing.T) { chatOnly(t, "threads", newSetup(t), testThread) })
	t.Run("edit", func(t *testing.T) { testEdit(t, newSetup(t)) })
	t.Run("long output split", func(t *testing.T) { chatOnly(t, "size limits", newSetup(t), testSplit) })
	t.Run("long output upload", func(t *testing.T) { chatOnly(t, "file uploads", newSetup(t), testUpload) })
	t.Run("mention routed to handler", func(t *testing.T) { chatOnly(t, "inbound messages", newSetup(t), testMention) })
	t.Run("button click round trip", func(t *testing.T) { chatOnly(t, "buttons", newSetup(t), testClick) })
	t.Run("reconnect after cut connection", func(t *testing.T) { chatOnly(t, "a connection", newSetup(t), testReconnect) })
	t.Run("429 honours retry-after", func(t *testing.T) { test429(t, newSetup(t)) })
	t.Run("5xx retried, 4xx permanent", func(t *testing.T) { testStatus(t, newSetup(t)) })
	t.Run("unknown channel", func(t *testing.T) { testUnknownChannel(t, newSetup(t)) })
	t.Run("no secret in errors", func(t *testing.T) { testNoSecret(t, newSetup(t)) })
	t.Run("listen returns on cancel", func(t *testing.T) { testListenStops(t, newSetup(t)) })
	t.Run("templated alert", func(t *testing.T) { testTemplate(t, newSetup(t)) })
	t.Run("permalink", func(t *testing.T) { chatOnly(t, "message links", newSetup(t), testPermalink) })
}

// testPermalink: a message, a reply and the reply's thread link to where
// the service shows them, or, on a platform that cannot say, to nothing.
func testPermalink(t *testing.T, s Setup) {
	root, err := s.Platform.Post(t.Context(), s.Channel, sample())
	require.NoError(t, err)
	reply, err := s.Platform.Post(t.Context(), s.Channel, chat.Message{Title: "reply", Thread: &root})
	require.NoError(t, err)
	for name, ref := range map[string]chat.MessageRef{"message": root, "reply": reply, "thread": chat.ThreadRef(reply)} {
		link, err := chat.Permalink(t.Context(), s.Platform, ref)
		require.NoError(t, err, name)
		want := ""
		if s.Permalink != nil {
			want = s.Permalink(ref)
			require.NotEmpty(t, want, name)
		}
		require.Equal(t, want, link, name)
	}
	if s.Permalink != nil {
		require.Equal(t, s.Permalink(root), s.Permalink(chat.ThreadRef(reply)), "a thread's link is its root's")
	}
}

// testTemplate posts an alert shaped by a config template: its title,
// text, fields and link button reach the reader in the platform's own format.
func testTemplate(t *testing.T, s Setup) {
	tmpl := config.Template{
		Name:    "custom",
		Title:   "{{ upper .Reason }} on {{ .Object.Name }}",
		Text:    "{{ .Message }} (from a template)",
		Context: `team {{ index .ObjectLabels "team" }}`,
		Fields:  []config.TemplateField{{Name: "Where", Value: "{{ .Object.Namespace }}/{{ .Object.Name }}"}},
		Buttons: []config.TemplateButton{{Label: "Runbook", URL: "https://runbooks.example.com/{{ lower .Reason }}"}},
	}
	ev := event.Event{Source: "warnings", Cluster: "conformance", Type: event.Error, Level: event.Warn, Reason: "BackOff",
		Message: "Back-off restarting failed container", Object: event.Object{Kind: "Pod", Namespace: "web", Name: "web-1"},
		ObjectLabels: map[string]string{"team": "storefront"}}
	m, err := alerting.RenderTemplate(tmpl, ev)
	require.NoError(t, err)
	_, err = s.Platform.Post(t.Context(), s.Channel, m)
	require.NoError(t, err)
	got := only(t, s, 1)
	want := []string{"BACKOFF on web-1", "Back-off restarting failed container (from a template)", "Where", "web/web-1", "team storefront"}
	if !s.Sink { // a sink stores or pages the alert; it shows no buttons
		want = append(want, "Runbook")
	}
	for _, w := range want {
		require.Contains(t, got[0].Text, w)
	}
	require.NotContains(t, got[0].Text, "Kind", "the template's fields replace the built-in ones")
}

// chatOnly runs a case of a chat feature, or skips it on a sink, naming
// the feature.
func chatOnly(t *testing.T, feature string, s Setup, test func(*testing.T, Setup)) {
	t.Helper()
	if s.Sink {
		t.Skipf("a sink has no %s", feature)
	}
	test(t, s)
}

func sample() chat.Message {
	return chat.Message{
		Title: "CrashLoopBackOff: default/web-7d9f",
		Level: chat.LevelError,
		Sections: []chat.Section{{
			Text:   "Back-off restarting failed container",
			Fields: []chat.Field{{Name: "Namespace", Value: "default"}, {Name: "Reason", Value: "CrashLoopBackOff"}},
			Code:   "NAME READY STATUS\nweb-7d9f 0/1 CrashLoopBackOff",
		}},
		Context: "cluster: conformance",
	}
}

func only(t *testing.T, s Setup, n int) []Posted {
	t.Helper()
	var got []Posted
	require.Eventually(t, func() bool { got = s.Fake.Messages(s.Channel.ID); return len(got) >= n }, timeout, 10*time.Millisecond)
	require.Len(t, got, n, "messages: %+v", got)
	return got
}

func testPost(t *testing.T, s Setup) {
	ref, err := s.Platform.Post(t.Context(), s.Channel, sample())
	require.NoError(t, err)
	require.NotEmpty(t, ref.ID)
	got := only(t, s, 1)
	require.Equal(t, ref.ID, got[0].ID)
	for _, want := range []string{"CrashLoopBackOff: default/web-7d9f", "Back-off restarting", "Namespace", "default",
		"web-7d9f 0/1 CrashLoopBackOff", "cluster: conformance"} {
		require.Contains(t, got[0].Text, want)
	}
}

func testThread(t *testing.T, s Setup) {
	root, err := s.Platform.Post(t.Context(), s.Channel, sample())
	require.NoError(t, err)
	reply, err := s.Platform.Post(t.Context(), s.Channel, chat.Message{Title: "reply", Thread: &root})
	require.NoError(t, err)
	require.Equal(t, root.ID, reply.Thread, "the reply's ref names its thread")
	got := only(t, s, 2)
	require.Equal(t, root.ID, got[1].Thread)
	require.Contains(t, got[1].Text, "reply")
}

func testEdit(t *testing.T, s Setup) {
	ref, err := s.Platform.Post(t.Context(), s.Channel, sample())
	require.NoError(t, err)
	edited, err := s.Platform.Post(t.Context(), s.Channel, chat.Message{Title: "Resolved: default/web-7d9f", Level: chat.LevelSuccess, Replace: &ref})
	require.NoError(t, err)
	require.Equal(t, ref.ID, edited.ID)
	got := only(t, s, 1)
	require.Equal(t, 1, got[0].Edits)
	require.Contains(t, got[0].Text, "Resolved: default/web-7d9f")
	require.NotContains(t, got[0].Text, "Back-off restarting")
}

// lines returns n distinct, recognisable lines of output.
func lines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "pod-%05d   1/1   Running   0   %dm\n", i, i%60)
	}
	return b.String()
}

// send delivers m the way the alerting pipeline does, splitting and uploading.
func send(t *testing.T, s Setup, m chat.Message) chat.MessageRef {
	t.Helper()
	ref, _, err := chat.Send(t.Context(), s.Platform, s.Channel, m, chat.Backoff{Initial: 10 * time.Millisecond}, time.Now().Add(timeout))
	require.NoError(t, err)
	return ref
}

func limits(t *testing.T, s Setup) chat.Limits {
	sz, ok := s.Platform.(chat.Sizer)
	require.True(t, ok, "a chat platform must declare its size limits (chat.Sizer)")
	l := sz.Limits()
	require.Positive(t, l.Block)
	return l
}

func testSplit(t *testing.T, s Setup) {
	l := limits(t, s)
	// Longer than one block, short enough not to be uploaded.
	size := l.Block * 2
	if l.Upload > 0 {
		size = min(size, l.Upload-1)
	}
	out := lines(size/36 + 1)
	if l.Upload > 0 && len(out) > l.Upload {
		out = out[:strings.LastIndexByte(out[:l.Upload-1], '\n')+1]
	}
	require.Greater(t, len(out), l.Block, "the case needs output longer than a block")
	send(t, s, chat.Message{Title: "kubectl get pods", Sections: []chat.Section{{Code: out}}})
	var all strings.Builder
	for _, m := range s.Fake.Messages(s.Channel.ID) {
		require.Zero(t, strings.Count(m.Text, "```")%2, "unbalanced fences in %q", m.Text)
		all.WriteString(m.Text)
	}
	for line := range strings.Lines(out) {
		require.Contains(t, all.String(), strings.TrimSpace(line), "a line of output is missing")
	}
	require.Empty(t, s.Fake.Files(s.Channel.ID))
}

func testUpload(t *testing.T, s Setup) {
	l := limits(t, s)
	if !s.CanUpload {
		// The platform cannot upload: long output arrives whole, split over messages.
		out := lines(l.Block*3/36 + 1)
		root := send(t, s, chat.Message{Title: "kubectl get pods", Sections: []chat.Section{{Code: out}}})
		msgs := s.Fake.Messages(s.Channel.ID)
		require.Greater(t, len(msgs), 1)
		var all strings.Builder
		for i, m := range msgs {
			if i > 0 {
				require.Equal(t, root.ID, m.Thread, "continuations go into the first message's thread")
			}
			all.WriteString(m.Text)
		}
		for line := range strings.Lines(out) {
			require.Contains(t, all.String(), strings.TrimSpace(line))
		}
		return
	}
	require.Positive(t, l.Upload, "an Uploader needs an upload threshold")
	out := lines(l.Upload/36 + 50)
	root := send(t, s, chat.Message{Title: "kubectl get pods -A", Sections: []chat.Section{{Code: out}}})
	msgs := only(t, s, 1)
	require.Contains(t, msgs[0].Text, "attached")
	require.Less(t, len(msgs[0].Text), l.Upload, "the summary is short")
	var files []Uploaded
	require.Eventually(t, func() bool { files = s.Fake.Files(s.Channel.ID); return len(files) > 0 }, timeout, 10*time.Millisecond)
	require.Len(t, files, 1)
	require.Equal(t, out, files[0].Content, "the file holds the whole output")
	require.Equal(t, root.ID, files[0].Thread)
}

// recorder is a handler that remembers what it got and answers "pong: <text>".
type recorder struct {
	mu sync.Mutex
	in []chat.Inbound
}

func (r *recorder) Handle(_ context.Context, in chat.Inbound) chat.Message {
	r.mu.Lock()
	r.in = append(r.in, in)
	r.mu.Unlock()
	text := in.Text
	if in.ButtonID != "" {
		text = "clicked " + in.ButtonID + " " + in.Value
	}
	return chat.Message{Title: "pong: " + text, Thread: &in.Thread}
}

func (r *recorder) got() []chat.Inbound {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]chat.Inbound(nil), r.in...)
}

// listen runs Listen until the test ends and waits for the first connection.
func listen(t *testing.T, s Setup, h chat.Handler) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Platform.Listen(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(timeout):
			t.Error("Listen did not return after cancel")
		}
	})
	require.Eventually(t, listening(s), timeout, 10*time.Millisecond, "Listen did not connect")
}

// listening reports whether Listen is ready for inbound messages.
func listening(s Setup) func() bool {
	if s.Ready != nil {
		return s.Ready
	}
	return func() bool { return s.Fake.Connections() > 0 }
}

func matchesChannel(in chat.Inbound, ch chat.Channel) bool {
	return in.Channel.ID == ch.ID || in.Channel.Name == ch.ID || in.Channel.Name == ch.Name
}

func testMention(t *testing.T, s Setup) {
	h := &recorder{}
	listen(t, s, h)
	require.NoError(t, s.Fake.Mention(s.Channel.ID, "U-alice", "kubectl get pods -n default"))
	require.Eventually(t, func() bool { return len(h.got()) == 1 }, timeout, 10*time.Millisecond)
	in := h.got()[0]
	require.Equal(t, "kubectl get pods -n default", in.Text, "the bot mention is removed")
	require.True(t, matchesChannel(in, s.Channel), "inbound channel %+v is not %+v", in.Channel, s.Channel)
	require.NotEmpty(t, in.UserID)
	require.Empty(t, in.ButtonID)
	msgs := only(t, s, 2) // the mention and the reply
	require.Contains(t, msgs[1].Text, "pong: kubectl get pods -n default")
	require.Equal(t, msgs[0].ID, msgs[1].Thread, "the reply goes into the mention's thread")
}

func testClick(t *testing.T, s Setup) {
	h := &recorder{}
	listen(t, s, h)
	m := sample()
	m.Sections[0].Buttons = []chat.Button{{Label: "Run again", ID: "act-run-1", Style: chat.ButtonPrimary}}
	m.Sections[0].Selects = []chat.Select{{Placeholder: "Namespace", ID: "act-ns-1", Options: []chat.Option{{Label: "default", Value: "default"}, {Label: "kube-system", Value: "kube-system"}}}}
	ref, err := s.Platform.Post(t.Context(), s.Channel, m)
	require.NoError(t, err)
	require.NoError(t, s.Fake.Click(s.Channel.ID, ref.ID, "U-bob", "act-run-1", ""))
	require.NoError(t, s.Fake.Click(s.Channel.ID, ref.ID, "U-bob", "act-ns-1", "kube-system"))
	require.Eventually(t, func() bool { return len(h.got()) == 2 }, timeout, 10*time.Millisecond)
	got := h.got()
	clicks := map[string]chat.Inbound{got[0].ButtonID: got[0], got[1].ButtonID: got[1]}
	require.Contains(t, clicks, "act-run-1")
	require.Contains(t, clicks, "act-ns-1")
	require.Equal(t, "kube-system", clicks["act-ns-1"].Value)
	for _, in := range got {
		require.True(t, matchesChannel(in, s.Channel))
		require.NotEmpty(t, in.UserID)
	}
	msgs := only(t, s, 3)
	for _, reply := range msgs[1:] {
		require.Contains(t, reply.Text, "pong: clicked")
		require.Equal(t, ref.ID, reply.Thread, "a click is answered in the clicked message's thread")
	}
}

func testReconnect(t *testing.T, s Setup) {
	if s.Connectionless {
		t.Skip("the platform receives over HTTPS: there is no connection to cut")
	}
	h := &recorder{}
	listen(t, s, h)
	before := s.Fake.Connections()
	s.Fake.Drop()
	require.Eventually(t, func() bool { return s.Fake.Connections() > before }, timeout, 10*time.Millisecond, "no reconnect within %s", timeout)
	// The new connection works: a mention still gets through.
	require.Eventually(t, func() bool { return s.Fake.Mention(s.Channel.ID, "U-carol", "ping") == nil }, timeout, 50*time.Millisecond)
	require.Eventually(t, func() bool { return len(h.got()) == 1 }, timeout, 10*time.Millisecond)
}

// skipLocal skips a case that needs a remote API to fail.
func skipLocal(t *testing.T, s Setup) {
	t.Helper()
	if s.Local {
		t.Skip("the platform is served by the agent itself: there is no remote API to fail with an HTTP status")
	}
}

func test429(t *testing.T, s Setup) {
	skipLocal(t, s)
	s.Fake.FailNext(2, 429, time.Second)
	start := time.Now()
	ref, attempts, err := Deliver(t.Context(), s.Platform, s.Channel, sample(), chat.Backoff{Initial: 10 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, 3, attempts)
	require.GreaterOrEqual(t, time.Since(start), 2*time.Second, "Retry-After was not honoured")
	got := only(t, s, 1)
	require.Equal(t, ref.ID, got[0].ID)
}

func testStatus(t *testing.T, s Setup) {
	skipLocal(t, s)
	for _, status := range []int{500, 502, 503, 504} {
		s.Fake.FailNext(1, status, 0)
		_, err := s.Platform.Post(t.Context(), s.Channel, sample())
		require.Error(t, err, "status %d", status)
		require.False(t, chat.IsPermanent(err), "status %d must be retryable: %v", status, err)
	}
	for _, status := range []int{400, 401, 403, 404} {
		s.Fake.FailNext(1, status, 0)
		_, err := s.Platform.Post(t.Context(), s.Channel, sample())
		require.Error(t, err, "status %d", status)
		require.True(t, chat.IsPermanent(err), "status %d must be permanent: %v", status, err)
	}
	_, err := s.Platform.Post(t.Context(), chat.Channel{Name: "nowhere", ID: "no-such-channel"}, sample())
	require.Error(t, err)
	require.True(t, chat.IsPermanent(err), "an unknown channel is permanent: %v", err)
	require.Contains(t, err.Error(), "no-such-channel", "the error names the channel")
	require.Empty(t, s.Fake.Messages(s.Channel.ID))
}

func testUnknownChannel(t *testing.T, s Setup) {
	_, err := s.Platform.Post(t.Context(), chat.Channel{Name: "nowhere", ID: "no-such-channel"}, sample())
	require.Error(t, err)
	require.True(t, chat.IsPermanent(err), "an unknown channel is permanent: %v", err)
	require.Contains(t, err.Error(), "no-such-channel", "the error names the channel")
	for _, secret := range s.Secrets {
		require.NotContains(t, err.Error(), secret)
	}
	require.Empty(t, s.Fake.Messages(s.Channel.ID))
}

func testNoSecret(t *testing.T, s Setup) {
	skipLocal(t, s)
	var errs []error
	for _, status := range []int{401, 500} {
		s.Fake.FailNext(1, status, 0)
		_, err := s.Platform.Post(t.Context(), s.Channel, sample())
		errs = append(errs, err)
	}
	_, err := s.Platform.Post(t.Context(), chat.Channel{ID: "no-such-channel"}, sample())
	errs = append(errs, err)
	for _, err := range errs {
		require.Error(t, err)
		for _, secret := range s.Secrets {
			require.NotContains(t, err.Error(), secret)
		}
	}
}

func testListenStops(t *testing.T, s Setup) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Platform.Listen(ctx, &recorder{}) }()
	if !s.Sink { // a sink listens to nothing: it only waits for ctx
		require.Eventually(t, listening(s), timeout, 10*time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			require.True(t, errors.Is(err, context.Canceled), "Listen returned %v", err)
		}
	case <-time.After(timeout):
		t.Fatal("Listen did not return after cancel")
	}
	if f, ok := s.Fake.(OpenConnections); ok {
		require.Eventually(t, func() bool { return f.Connected() == 0 }, timeout, 10*time.Millisecond,
			"a connection is still open after Listen returned")
	}
}

// JSONText collects, in document order where it can, every string found
// under one of keys anywhere in the JSON documents: what a reader sees of
// a platform's rich message (blocks, cards, embeds, attachments). Invalid
// JSON adds nothing.
func JSONText(keys []string, docs ...[]byte) string {
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range keys {
				if s, ok := v[k].(string); ok {
					b.WriteString(s + "\n")
				}
			}
			for _, child := range v {
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	for _, doc := range docs {
		var v any
		if json.Unmarshal(doc, &v) == nil {
			walk(v)
		}
	}
	return b.String()
}

// Deliver posts m as the delivery queue does, retrying through chat.Retry
// until b.Deadline from now; it returns the ref, the attempts made and the
// last error.
func Deliver(ctx context.Context, n chat.Notifier, to chat.Channel, m chat.Message, b chat.Backoff) (chat.MessageRef, int, error) {
	if b.Deadline == 0 {
		b.Deadline = time.Minute
	}
	var ref chat.MessageRef
	attempts, err := chat.Retry(ctx, b, time.Now().Add(b.Deadline), func(ctx context.Context) error {
		var err error
		ref, err = n.Post(ctx, to, m)
		return err
	})
	return ref, attempts, err
}
