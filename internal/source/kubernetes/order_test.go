package kubernetes

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

// TestChangesOfOneObjectInOrder: however many workers, the changes of one
// object are handled in the order they came, 100 times over; changes of
// different objects still run side by side.
func TestChangesOfOneObjectInOrder(t *testing.T) {
	s := newSource(t, config.Namespaces{}, config.Resource{Type: "v1/configmaps", Events: []string{"update"}, Fields: []string{"data.v"}})
	s.opts.Workers = 4
	s.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[objectKey]())
	s.pending = map[objectKey][]item{}
	var mu sync.Mutex
	got := map[string][]string{}
	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Go(func() {
			for s.processNext(context.Background(), func(_ context.Context, ev event.Event) {
				mu.Lock()
				got[ev.Object.Name] = append(got[ev.Object.Name], ev.Fields[0].Value)
				mu.Unlock()
			}) {
			}
		})
	}
	h := s.handler(s.resources[0])
	cm := func(name string, v int) *corev1.ConfigMap {
		return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: fmt.Sprint(v + 1)},
			Data:       map[string]string{"v": fmt.Sprint(v)}}
	}
	const n = 100
	for i := 1; i <= n; i++ {
		for _, name := range []string{"a", "b"} {
			h.OnUpdate(cm(name, i-1), cm(name, i))
		}
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got["a"]) == n && len(got["b"]) == n
	}, 10*time.Second, time.Millisecond)
	s.queue.ShutDown()
	wg.Wait()
	for _, name := range []string{"a", "b"} {
		for i, v := range got[name] {
			require.Equal(t, fmt.Sprintf("%q → %q", fmt.Sprint(i), fmt.Sprint(i+1)), v, "%s: change %d", name, i+1)
		}
	}
}
