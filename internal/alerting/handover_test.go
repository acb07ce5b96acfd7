package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/outbox"
)

// outage is a platform that fails every post while down, and records
// posts and edits.
type outage struct {
	down atomic.Bool
	mu   sync.Mutex
	got  []string
	n    int
}

func (o *outage) Name() string { return "a" }
func (o *outage) Post(_ context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	if o.down.Load() {
		return chat.MessageRef{}, errors.New("503")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if m.Replace != nil {
		o.got = append(o.got, fmt.Sprintf("%s: edit %s: %s", to.ID, m.Replace.ID, m.PlainText()))
		return *m.Replace, nil
	}
	o.n++
	o.got = append(o.got, fmt.Sprintf("%s: post %d: %s", to.ID, o.n, m.Title))
	return chat.MessageRef{Platform: "a", Channel: to.ID, ID: fmt.Sprint(o.n)}, nil
}
func (o *outage) Listen(ctx context.Context, _ chat.Handler) error { <-ctx.Done(); return nil }

func (o *outage) posts() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.got...)
}

// run starts p until the test ends, or until the returned stop is called.
func run(t *testing.T, p *Pipeline) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); require.NoError(t, <-done) }) }
	t.Cleanup(stop)
	return stop
}

// TestTakeOverLosesNothing: a reload hands over from a pipeline that could
// not deliver (the platform is down): what it queued stays in the outbox
// and the new pipeline delivers it once, in order, before what comes
// after; a repeated warning keeps folding into the message posted before
// the hand-over.
func TestTakeOverLosesNothing(t *testing.T) {
	reg := prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	m := NewMetrics(reg)
	ob := outbox.New(nil, "", "", reg, log)
	platform := &outage{}
	cfg := &config.Config{Cluster: config.Cluster{Name: "dev"}, Channels: []config.Channel{
		{Name: "ops", ID: "C1", Platform: "a", Bindings: config.Bindings{Sources: []string{"pods"}}, RateLimit: config.RateLimit{PerSecond: 100, Burst: 100}},
	}}
	opts := Options{Outbox: ob, Metrics: m, Backoff: chat.Backoff{Deadline: time.Minute, Max: 50 * time.Millisecond}}
	old, err := New(cfg, map[string]chat.Platform{"a": platform}, opts, reg, log)
	require.NoError(t, err)
	stopOld := run(t, old)
	created := func(name string) event.Event {
		return event.Event{Source: "pods", Cluster: "dev", Type: event.Create, Object: event.Object{Kind: "Pod", Namespace: "ns", Name: name}}
	}
	warning := event.Event{Source: "pods", Cluster: "dev", Type: event.Warning, Reason: "BackOff", Object: event.Object{Kind: "Pod", Namespace: "ns", Name: "w"}}
	old.Emit(t.Context(), warning)
	require.Eventually(t, func() bool { return len(platform.posts()) == 1 }, 5*time.Second, 10*time.Millisecond)

	platform.down.Store(true)
	for _, name := range []string{"p1", "p2", "p3"} {
		old.Emit(t.Context(), created(name))
	}
	stopOld() // drains for DrainTimeout, then leaves the rest in the outbox
	require.Len(t, ob.Pending(), 3)

	// The new config routes another source too: a new pipeline.
	cfg2 := *cfg
	cfg2.Channels = []config.Channel{cfg.Channels[0]}
	cfg2.Channels[0].Bindings.Sources = []string{"pods", "deploys"}
	p, err := New(&cfg2, map[string]chat.Platform{"a": platform}, opts, reg, log)
	require.NoError(t, err)
	p.TakeOver(old)
	require.Equal(t, 3, p.Replay(t.Context()))
	old.Close()
	platform.down.Store(false)
	run(t, p)
	p.Emit(t.Context(), warning) // a repeat: no new message
	p.Emit(t.Context(), created("p4"))
	require.Eventually(t, func() bool { return len(platform.posts()) >= 5 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(platform.posts()) >= 6 }, 10*time.Second, 10*time.Millisecond, "the count edit")
	got := platform.posts()
	require.Equal(t, []string{
		"C1: post 1: Pod ns/w warning (BackOff)",
		"C1: post 2: Pod ns/p1 created",
		"C1: post 3: Pod ns/p2 created",
		"C1: post 4: Pod ns/p3 created",
		"C1: post 5: Pod ns/p4 created",
	}, got[:5])
	require.Contains(t, got[5], "C1: edit 1: ")
	require.Contains(t, got[5], "Count: 2")
	require.Len(t, got, 6)
	require.Empty(t, ob.Pending())
}
