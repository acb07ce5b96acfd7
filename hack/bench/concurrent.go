package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/kubectl"
)

// concurrentRuns is how many "kubectl get pods -A" run at each level of
// concurrency; 0 skips the section.
var concurrentRuns int

// concurrentCommands measures "kubectl get pods -A" over 1,000 pods run by
// 1, 5 and 20 users at once through the in-process kubectl executor (each
// command builds its own command tree; nothing is shared between them):
// throughput, and each command's latency at p50 and p99.
func concurrentCommands(ctx context.Context, env *testenv.Env, cs kubernetes.Interface, runs int, f *figures) error {
	const ns, pods = "concurrent", 1000
	if err := env.CreateNamespace(ctx, ns); err != nil {
		return err
	}
	if err := parallel(pods, func(i int) error {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%04d", i)},
			Spec:       corev1.PodSpec{NodeName: env.Nodes[0], Containers: []corev1.Container{{Name: "c", Image: "registry.example/bench:1"}}},
		}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := env.BindGroupToClusterRole(ctx, "bench-viewers", "view"); err != nil {
		return err
	}
	k, err := kubectl.New("kubectl", config.Raw{}, executor.Deps{RESTConfig: env.Config})
	if err != nil {
		return err
	}
	req := executor.Request{Args: []string{"get", "pods", "-A"}, Identity: executor.Identity{User: "bench", Groups: []string{"bench-viewers"}},
		MaxOutputBytes: 1 << 22}
	// One command first, so discovery is cached for every level alike.
	if _, err := k.Execute(ctx, req); err != nil {
		return err
	}
	fmt.Printf("bench: kubectl get pods -A over %d pods, in-process, %d commands per level\n", pods, runs)
	fmt.Printf("bench:   %-10s %12s %10s %10s\n", "at once", "commands/s", "p50", "p99")
	for _, users := range []int{1, 5, 20} {
		var (
			next atomic.Int64
			mu   sync.Mutex
			lat  []time.Duration
			errs []error
			wg   sync.WaitGroup
		)
		start := time.Now()
		for range users {
			wg.Go(func() {
				for next.Add(1) <= int64(runs) {
					cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
					t0 := time.Now()
					res, err := k.Execute(cctx, req)
					d := time.Since(t0)
					cancel()
					if err == nil && res.ExitCode != 0 {
						err = fmt.Errorf("exit %d: %s", res.ExitCode, res.Errors)
					}
					mu.Lock()
					lat = append(lat, d)
					if err != nil {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		if len(errs) > 0 {
			return fmt.Errorf("%d at once: %w", users, errs[0])
		}
		slices.Sort(lat)
		l := level{users: users, perSec: float64(runs) / elapsed.Seconds(), p50: lat[len(lat)/2], p99: lat[min(len(lat)-1, len(lat)*99/100)]}
		f.levels = append(f.levels, l)
		fmt.Printf("bench:   %-10d %12.1f %10s %10s\n", users, l.perSec, l.p50.Round(time.Millisecond), l.p99.Round(time.Millisecond))
	}
	// These pods would otherwise count in the scale curve's smallest size.
	return deletePods(ctx, cs, ns)
}

// deletePods removes every pod of ns at once (grace 0: kwok runs nothing to
// stop) and waits until none is left.
func deletePods(ctx context.Context, cs kubernetes.Interface, ns string) error {
	zero := int64(0)
	if err := cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("delete pods of %s: %w", ns, err)
	}
	for {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return err
		}
		if len(l.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
