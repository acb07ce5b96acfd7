package alerting

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/state"
)

// threader is a chat.Platform that records each message's title and the
// thread it was posted into.
type threader struct {
	mu  sync.Mutex
	got []string // "title" or "title in ID"
}

func (r *threader) Name() string { return "chat" }
func (r *threader) Post(_ context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref := chat.MessageRef{Platform: "chat", Channel: to.ID, ID: strconv.Itoa(len(r.got) + 1)}
	line := m.Title
	if m.Thread != nil {
		ref.Thread = m.Thread.Root()
		line += " in " + ref.Thread
	}
	r.got = append(r.got, line)
	return ref, nil
}
func (r *threader) Listen(ctx context.Context, _ chat.Handler) error { <-ctx.Done(); return nil }

func (r *threader) posted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func TestConversationsShareAThread(t *testing.T) {
	chatp := &threader{}
	st := state.NewMemory()
	cfg := &config.Config{Cluster: config.Cluster{Name: "dev"}, Channels: []config.Channel{
		{Name: "gitops", ID: "C1", Platform: "chat", Bindings: config.Bindings{Sources: []string{"prs"}}},
	}}
	// run starts a pipeline on st, as an agent (re)starting would, emits
	// evs and waits for their delivery.
	run := func(evs ...event.Event) {
		t.Helper()
		p, err := New(cfg, map[string]chat.Platform{"chat": chatp}, Options{State: st}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- p.Start(ctx) }()
		defer func() { cancel(); <-done }()
		want := len(chatp.posted()) + len(evs)
		for _, ev := range evs {
			p.Emit(t.Context(), ev)
		}
		require.Eventually(t, func() bool { return len(chatp.posted()) == want }, time.Minute, 10*time.Millisecond)
	}
	ev := func(headline, thread string) event.Event {
		return event.Event{Source: "prs", Cluster: "dev", Type: event.Update, Object: event.Object{Kind: "Kustomization", Namespace: "flux", Name: "apps"},
			Headline: headline, Thread: thread, ID: headline}
	}
	run(ev("opened 7", "acme/fleet#7"), ev("opened 8", "acme/fleet#8"), ev("pushed 7", "acme/fleet#7"), ev("unthreaded", ""))
	require.Equal(t, []string{"opened 7", "opened 8", "pushed 7 in 1", "unthreaded"}, chatp.posted())
	// A new agent on the same state keeps threading.
	run(ev("merged 7", "acme/fleet#7"))
	require.Equal(t, "merged 7 in 1", chatp.posted()[4])
}

func TestConversationsAreBounded(t *testing.T) {
	st := state.NewMemory()
	th := newThreads()
	s := &sender{b: binding{platform: &threader{}, channel: chat.Channel{Name: "gitops", ID: "C1"}}}
	th.use(st, slog.New(slog.DiscardHandler), map[string]*sender{"x": s})
	for i := range MaxConversations + 1 {
		th.startConversation(t.Context(), s, fmt.Sprint(i), chat.MessageRef{ID: fmt.Sprint(i)})
	}
	_, ok := th.conversation(s, "0")
	require.False(t, ok, "the oldest is forgotten")
	ref, ok := th.conversation(s, "1")
	require.True(t, ok)
	require.Equal(t, "1", ref.ID)
	// As the state holds them.
	again := newThreads()
	again.use(st, slog.New(slog.DiscardHandler), map[string]*sender{"x": s})
	_, ok = again.conversation(s, "0")
	require.False(t, ok)
	_, ok = again.conversation(s, fmt.Sprint(MaxConversations))
	require.True(t, ok)
}
