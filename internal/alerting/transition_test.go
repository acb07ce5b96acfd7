package alerting

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/outbox"
	"github.com/kubechat/kubechat/internal/state"
)

// TestResolutionNeedsAnAlert: a resolution with no alert to mark resolved
// (what a start reports for every healthy object) is counted as skipped
// and never enters the outbox or the queue; one queued behind its failing
// alert, still undelivered, or one whose alert a previous run left open,
// edits that alert.
func TestResolutionNeedsAnAlert(t *testing.T) {
	reg := prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	m := NewMetrics(reg)
	ob := outbox.New(nil, "", "", reg, log)
	st := state.NewMemory()
	platform := &outage{}
	cfg := &config.Config{Cluster: config.Cluster{Name: "dev"}, Channels: []config.Channel{
		{Name: "ops", ID: "C1", Platform: "a", Bindings: config.Bindings{Sources: []string{"pods"}}, RateLimit: config.RateLimit{PerSecond: 100, Burst: 100}},
	}}
	opts := Options{Outbox: ob, State: st, Metrics: m, Backoff: chat.Backoff{Deadline: time.Minute, Max: 50 * time.Millisecond}}
	p, err := New(cfg, map[string]chat.Platform{"a": platform}, opts, reg, log)
	require.NoError(t, err)
	stop := run(t, p)
	pod := func(name string, tr event.Transition) event.Event {
		ev := event.Event{Source: "pods", Cluster: "dev", Type: event.Update, Transition: tr, Reason: "CrashLoopBackOff",
			ID: name + "|" + string(tr), Time: time.Now(), Object: event.Object{Kind: "Pod", Namespace: "ns", Name: name}}
		if tr == event.Failing {
			ev.Level = event.Critical
		}
		return ev
	}

	// Nothing to resolve: decided at once, nothing queued.
	p.Emit(t.Context(), pod("healthy", event.Resolved))
	require.Empty(t, ob.Pending())
	require.Zero(t, p.Pending())
	require.InDelta(t, 1, notifications(t, reg, "a", "ops", chat.ResultSkipped), 0)
	traces := p.Explain("Pod", "ns", "healthy")
	require.Len(t, traces, 1)
	require.Equal(t, []Decision{{Channel: "a/ops", Outcome: OutcomeSkipped, Rule: "no open alert of this workload to mark resolved"}}, traces[0].Decisions)

	// The failing alert cannot be delivered yet: its resolution queues
	// behind it.
	platform.down.Store(true)
	p.Emit(t.Context(), pod("web", event.Failing))
	p.Emit(t.Context(), pod("web", event.Resolved))
	require.Len(t, ob.Pending(), 2)
	platform.down.Store(false)
	require.Eventually(t, func() bool { return len(platform.posts()) == 2 }, 10*time.Second, 10*time.Millisecond)
	got := platform.posts()
	require.Equal(t, "C1: post 1: Pod ns/web is failing (CrashLoopBackOff)", got[0])
	require.True(t, strings.HasPrefix(got[1], "C1: edit 1: Resolved: Pod ns/web"), got[1])
	require.Eventually(t, func() bool { return len(ob.Pending()) == 0 }, 5*time.Second, 10*time.Millisecond)

	// An alert left open by a previous run is resolved by the next one.
	p.Emit(t.Context(), pod("db", event.Failing))
	require.Eventually(t, func() bool { return len(platform.posts()) == 3 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(ob.Pending()) == 0 }, 5*time.Second, 10*time.Millisecond)
	stop()
	p.Close()
	next, err := New(cfg, map[string]chat.Platform{"a": platform}, opts, reg, log)
	require.NoError(t, err)
	run(t, next)
	next.Emit(t.Context(), pod("db", event.Resolved))
	next.Emit(t.Context(), pod("web", event.Resolved)) // resolved already: nothing open
	require.Len(t, ob.Pending(), 1)
	require.Eventually(t, func() bool { return len(platform.posts()) == 4 }, 10*time.Second, 10*time.Millisecond)
	require.True(t, strings.HasPrefix(platform.posts()[3], "C1: edit 2: Resolved: Pod ns/db"), platform.posts()[3])
	require.Eventually(t, func() bool { return len(ob.Pending()) == 0 }, 5*time.Second, 10*time.Millisecond)
	require.InDelta(t, 2, notifications(t, reg, "a", "ops", chat.ResultSkipped), 0)
	require.Len(t, platform.posts(), 4)
}
