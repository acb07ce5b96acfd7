package alerting

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

// TestJobQueueCountsRunningJobs: a drain waits for an action that is
// running, not only for those still queued, so that its reply is sent.
func TestJobQueueCountsRunningJobs(t *testing.T) {
	q := newJobQueue()
	q.push(func(context.Context, *Pipeline) {})
	q.push(func(context.Context, *Pipeline) {})
	require.Equal(t, 2, q.len())
	f, ok := q.pop()
	require.True(t, ok)
	require.Equal(t, 2, q.len(), "one queued, one running")
	f(t.Context(), nil)
	q.done()
	require.Equal(t, 1, q.len())
}

// follower is an Actions whose one action follows an operation: it shows
// each state the test sends, and replies when the test closes states.
type follower struct {
	states chan string
}

func (f *follower) Triggered(event.Event, string, chat.Channel) []string { return []string{"follow"} }
func (f *follower) Run(_ context.Context, _ string, _ event.Event, _ string, _ chat.Channel, _ chat.MessageRef, d chat.Draft) chat.Message {
	last := ""
	for s := range f.states {
		d.Show(chat.Message{Title: s})
		last = s
	}
	return chat.Message{Title: "done after " + last}
}

// TestActionShowsWhatItFollows: an action that follows an operation posts
// its first state into the alert's thread, edits that message with each
// later state, and its reply replaces it: the thread gets one message.
func TestActionShowsWhatItFollows(t *testing.T) {
	reg := prometheus.NewRegistry()
	platform := &outage{}
	cfg := &config.Config{Cluster: config.Cluster{Name: "dev"}, Channels: []config.Channel{
		{Name: "ops", ID: "C1", Platform: "a", Bindings: config.Bindings{Sources: []string{"prs"}}, RateLimit: config.RateLimit{PerSecond: 100, Burst: 100}},
	}}
	p, err := New(cfg, map[string]chat.Platform{"a": platform}, Options{}, reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	f := &follower{states: make(chan string)}
	p.SetActions(f)
	run(t, p)
	p.Emit(t.Context(), event.Event{Source: "prs", Cluster: "dev", Type: event.Update, Headline: "merged", Object: event.Object{Kind: "Kustomization", Name: "apps"}})
	shown := func(n int) []string {
		t.Helper()
		require.Eventually(t, func() bool { return len(platform.posts()) >= n }, 10*time.Second, 5*time.Millisecond)
		return platform.posts()
	}
	shown(1)
	f.states <- "waiting 1"
	require.Equal(t, "C1: post 2: waiting 1", shown(2)[1])
	f.states <- "waiting 2"
	require.Equal(t, "C1: edit 2: waiting 2", shown(3)[2])
	close(f.states)
	require.Equal(t, "C1: edit 2: done after waiting 2", shown(4)[3])
	require.Len(t, platform.posts(), 4)
}

// TestActionWithoutStatesReplies: an action that shows nothing replies
// with a new message in the alert's thread.
func TestActionWithoutStatesReplies(t *testing.T) {
	platform := &threader{}
	cfg := &config.Config{Cluster: config.Cluster{Name: "dev"}, Channels: []config.Channel{
		{Name: "ops", ID: "C1", Platform: "chat", Bindings: config.Bindings{Sources: []string{"prs"}}},
	}}
	p, err := New(cfg, map[string]chat.Platform{"chat": platform}, Options{}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	f := &follower{states: make(chan string)}
	close(f.states)
	p.SetActions(f)
	run(t, p)
	p.Emit(t.Context(), event.Event{Source: "prs", Cluster: "dev", Type: event.Update, Headline: "merged", Object: event.Object{Kind: "Kustomization", Name: "apps"}})
	require.Eventually(t, func() bool { return len(platform.posted()) == 2 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, "done after  in 1", platform.posted()[1])
}
