package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/outbox"
)

// recorder is a chat.Platform that records what it is sent.
type recorder struct {
	name string
	fail error
	mu   sync.Mutex
	got  []string
}

func (r *recorder) Name() string { return r.name }
func (r *recorder) Post(_ context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	if r.fail != nil {
		return chat.MessageRef{}, r.fail
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, to.ID+": "+m.Title)
	return chat.MessageRef{ID: "1"}, nil
}
func (r *recorder) Listen(ctx context.Context, _ chat.Handler) error { <-ctx.Done(); return nil }

func TestEmitRoutesBySourceBinding(t *testing.T) {
	a, b := &recorder{name: "a"}, &recorder{name: "b", fail: chat.Permanent(errors.New("404"))}
	cfg := &config.Config{Cluster: config.Cluster{Name: "dev"}, Channels: []config.Channel{
		{Name: "ops", ID: "C1", Platform: "a", Bindings: config.Bindings{Sources: []string{"pods"}}},
		{Name: "dev", ID: "C2", Platform: "a", Bindings: config.Bindings{Sources: []string{"deploys"}}},
		{Name: "down", ID: "C3", Platform: "b", Bindings: config.Bindings{Sources: []string{"pods"}}},
	}}
	reg := prometheus.NewRegistry()
	r, err := New(cfg, map[string]chat.Platform{"a": a, "b": b}, Options{}, reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- r.Start(ctx) }()
	defer func() { cancel(); <-done }()
	r.Emit(t.Context(), event.Event{Source: "pods", Cluster: "dev", Type: event.Create, Object: event.Object{Kind: "Pod", Namespace: "ns", Name: "p"}})
	require.Eventually(t, func() bool {
		return notifications(t, reg, "b", "down", chat.ResultDeadLetter) == 1 && notifications(t, reg, "a", "ops", chat.ResultDelivered) == 1
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"C1: Pod ns/p created"}, a.got)
	require.InDelta(t, 1, testutil.ToFloat64(r.received.WithLabelValues("pods")), 0)
	require.Zero(t, notifications(t, reg, "a", "dev", chat.ResultDelivered), "dev is bound to another source")
}

func TestNewNeedsEveryPlatform(t *testing.T) {
	cfg := &config.Config{Channels: []config.Channel{{Name: "ops", Platform: "missing"}}}
	_, err := New(cfg, nil, Options{}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.EqualError(t, err, `alerting: channel "ops": platform "missing" is not built`)
}

func TestRender(t *testing.T) {
	m := Render(event.Event{Cluster: "prod", Type: event.Error, Level: event.Warn, Reason: "BackOff", Message: "restarting", Count: 3,
		Object: event.Object{Kind: "Pod", Namespace: "ns", Name: "p"}})
	require.Equal(t, "Pod ns/p error (BackOff)\nrestarting\nKind: Pod\nName: p\nNamespace: ns\nReason: BackOff\nCount: 3\ncluster: prod", m.PlainText())
	require.Equal(t, chat.LevelWarning, m.Level)
}

// BenchmarkEmit measures the routing pipeline: route, render, queue and
// deliver to a discarding platform, with the rate limit out of the way.
func BenchmarkEmit(b *testing.B) {
	r, stop := benchPipeline(b, Options{})
	defer stop()
	ev := event.Event{Source: "pods", Cluster: "dev", Type: event.Create, Object: event.Object{Kind: "Pod", Namespace: "ns", Name: "p"}}
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		r.Emit(context.Background(), ev)
		n++
	}
	drain(r)
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
}

// benchPipeline starts a pipeline with one channel bound to source pods,
// on a discarding platform with the rate limit out of the way; stop ends
// it.
func benchPipeline(b *testing.B, opts Options) (p *Pipeline, stop func()) {
	cfg := &config.Config{Cluster: config.Cluster{Name: "dev"}, Channels: []config.Channel{
		{Name: "ops", ID: "C1", Platform: "a", Bindings: config.Bindings{Sources: []string{"pods"}}, RateLimit: config.RateLimit{PerSecond: 1e9, Burst: 1e6}},
	}}
	p, err := New(cfg, map[string]chat.Platform{"a": discard{}}, opts, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Start(ctx) }()
	return p, func() { cancel(); <-done; p.Close() }
}

// drain waits until p delivered everything queued.
func drain(p *Pipeline) {
	for p.Pending() > 0 {
		time.Sleep(time.Millisecond)
	}
}

type discard struct{}

func (discard) Name() string { return "a" }
func (discard) Post(context.Context, chat.Channel, chat.Message) (chat.MessageRef, error) {
	return chat.MessageRef{}, nil
}
func (discard) Listen(ctx context.Context, _ chat.Handler) error { <-ctx.Done(); return nil }

// notifications reads kubechat_notifications_total for one channel and result.
func notifications(t *testing.T, reg *prometheus.Registry, platform, channel, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "kubechat_notifications_total" {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			want := map[string]string{"platform": platform, "channel": channel, "result": result}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// BenchmarkStartResolutions measures what a start costs the pipeline: the
// source reports every healthy object as resolved (it cannot know which
// alerts recovered while no agent ran), and almost none has an alert.
// Each op is one start of 20,000 objects, emitted and drained.
func BenchmarkStartResolutions(b *testing.B) {
	const objects = 20000
	evs := make([]event.Event, objects)
	for i := range evs {
		evs[i] = event.Event{Source: "pods", Cluster: "dev", Type: event.Update, Transition: event.Resolved, Level: event.Info,
			ID: fmt.Sprintf("uid-%d|resolved|1", i), Object: event.Object{Kind: "Pod", Namespace: "ns", Name: fmt.Sprintf("p-%d", i)}}
	}
	b.ReportAllocs()
	for b.Loop() {
		r, stop := benchPipeline(b, Options{Outbox: outbox.New(nil, "", "", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))})
		for _, ev := range evs {
			r.Emit(context.Background(), ev)
		}
		drain(r)
		stop()
	}
}
