package kubernetes

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

type discard struct{}

func (discard) Name() string { return "discard" }
func (discard) Post(context.Context, chat.Channel, chat.Message) (chat.MessageRef, error) {
	return chat.MessageRef{ID: "x"}, nil
}
func (discard) Listen(ctx context.Context, _ chat.Handler) error { <-ctx.Done(); return nil }

// BenchmarkPipeline measures the agent's own pipeline for typed pods: the
// informer handler enqueues, workers convert, filter and emit, the router
// routes, renders and delivers to a discarding platform. It reports events/s.
func BenchmarkPipeline(b *testing.B) {
	s, err := New(config.Source{Name: "pods", Type: "kubernetes", Kubernetes: &config.KubernetesSource{
		Resources: []config.Resource{{Type: "v1/pods", Events: []string{"create", "error"}}}}},
		"bench", nil, slog.New(slog.DiscardHandler), Options{Workers: 2})
	if err != nil {
		b.Fatal(err)
	}
	cfg := &config.Config{Cluster: config.Cluster{Name: "bench"}, Channels: []config.Channel{{Name: "c", ID: "c", Platform: "discard",
		Bindings: config.Bindings{Sources: []string{"pods"}}, RateLimit: config.RateLimit{PerSecond: 1e9, Burst: 1e6}}}}
	r, err := alerting.New(cfg, map[string]chat.Platform{"discard": discard{}}, alerting.Options{}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Start(ctx) })
	s.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[objectKey]())
	s.pending = map[objectKey][]item{}
	var emitted atomic.Int64
	for range 2 {
		wg.Go(func() {
			for s.processNext(ctx, func(ctx context.Context, ev event.Event) { emitted.Add(1); r.Emit(ctx, ev) }) {
			}
		})
	}
	h := s.handler(s.resources[0])
	pods := make([]*corev1.Pod, b.N)
	for i := range pods {
		pods[i] = &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Namespace: "ns", UID: "u", Labels: map[string]string{"app": "x"}},
			Spec:       corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{{Name: "c", Image: "i:1"}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
	}
	b.ResetTimer()
	start := time.Now()
	for _, p := range pods {
		h.OnAdd(p, false)
	}
	for emitted.Load() < int64(b.N) || r.Pending() > 0 {
		time.Sleep(100 * time.Microsecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.StopTimer()
	s.queue.ShutDown()
	cancel()
	wg.Wait()
}
