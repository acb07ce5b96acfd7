// Command bench ("make bench") measures the alert pipeline against a real
// control plane and prints the figures:
//
//   - pipeline throughput: informer → filter → route → render → deliver to
//     a discarding platform, replaying 60k objects (10k pods, 50k Events);
//   - latency from a pod's creation to the webhook sink receiving its
//     alert, p50 and p99, through the real kubechat binary;
//   - the kubechat process's RSS while it watches 10k pods and 50k Events;
//   - kubectl get pods in-process and in a command pod (isolation: pod).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/webhook"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	k8ssource "github.com/kubechat/kubechat/internal/source/kubernetes"
	"github.com/kubechat/kubechat/internal/testenv"
)

func main() {
	pods := flag.Int("pods", 10000, "pods to create")
	events := flag.Int("events", 50000, "Kubernetes Events to create")
	latencyPods := flag.Int("latency-pods", 200, "pods created one by one to measure alert latency")
	flag.IntVar(&podCommandRuns, "pod-commands", 20, "runs of kubectl get pods in-process and in a command pod (isolation: pod); 0 skips")
	flag.IntVar(&concurrentRuns, "concurrent-commands", 40, "runs of kubectl get pods -A at each of 1, 5 and 20 at once, over 1,000 pods; 0 skips")
	flag.IntVar(&cgroupLimitMiB, "cgroup-limit", 0, "also run the agent in a memory cgroup with this limit in MiB, as a container limit would (cgroup v1, root)")
	flag.Parse()
	if err := run(*pods, *events, *latencyPods); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(nPods, nEvents, nLatency int) error {
	ctx, stop := context.WithTimeout(context.Background(), 20*time.Minute)
	defer stop()
	fmt.Println("bench: starting the control plane")
	env, err := testenv.Start(ctx, testenv.Options{Nodes: 1})
	if err != nil {
		return err
	}
	defer env.Stop()
	fast := rest.CopyConfig(env.Config)
	fast.QPS, fast.Burst = 5000, 5000
	cs, err := kubernetes.NewForConfig(fast)
	if err != nil {
		return err
	}
	for _, ns := range []string{"bench", "latency", "kubechat"} {
		if err := env.CreateNamespace(ctx, ns); err != nil {
			return err
		}
	}
	if podCommandRuns > 0 {
		if err := podCommands(ctx, env, podCommandRuns); err != nil {
			return fmt.Errorf("pod commands: %w", err)
		}
	}

	if concurrentRuns > 0 {
		if err := concurrentCommands(ctx, env, cs, concurrentRuns); err != nil {
			return fmt.Errorf("concurrent commands: %w", err)
		}
	}

	// The agent, as users run it, with a loopback webhook sink.
	sink := newSink()
	defer sink.srv.Close()
	agent, err := startAgent(env, sink.srv.URL)
	if err != nil {
		return err
	}
	defer agent.stop()

	start := time.Now()
	if err := parallel(nPods, func(i int) error {
		_, err := cs.CoreV1().Pods("bench").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d", i), Labels: map[string]string{"app": "bench"}},
			Spec:       corev1.PodSpec{NodeName: env.Nodes[0], Containers: []corev1.Container{{Name: "c", Image: "registry.example/bench:1"}}},
		}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("bench: created %d pods in %s\n", nPods, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := parallel(nEvents, func(i int) error {
		typ := corev1.EventTypeNormal
		if i%50 == 0 {
			typ = corev1.EventTypeWarning
		}
		_, err := cs.CoreV1().Events("bench").Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("ev-%05d", i)},
			InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: "bench", Name: fmt.Sprintf("pod-%05d", i%max(nPods, 1))},
			Type:           typ, Reason: "BenchReason", Message: "a benchmark event with a message of a typical length for kubelet events",
		}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("bench: created %d Events in %s\n", nEvents, time.Since(start).Round(time.Millisecond))
	sink.waitQuiet(3 * time.Second)
	rss, hwm := agent.memory()
	fmt.Printf("bench: agent memory while watching %d pods and %d Events (GOMEMLIMIT=%s): RSS %.1f MiB (peak %.1f MiB)\n", nPods, nEvents, memLimit, rss, hwm)

	// Latency: one pod at a time, creation to sink.
	var lat []time.Duration
	for i := range nLatency {
		name := fmt.Sprintf("lat-%04d", i)
		ch := sink.expect("Pod latency/" + name + " created")
		t0 := time.Now()
		if _, err := cs.CoreV1().Pods("latency").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/bench:1"}}}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		select {
		case t1 := <-ch:
			lat = append(lat, t1.Sub(t0))
		case <-time.After(10 * time.Second):
			return fmt.Errorf("no alert for pod %s within 10s", name)
		}
	}
	slices.Sort(lat)
	if r := cgroupReport(); r != "" {
		fmt.Println("bench: agent " + r)
	}
	if len(lat) > 0 {
		fmt.Printf("bench: change → sink latency over %d pods: p50 %s, p99 %s\n", len(lat),
			lat[len(lat)/2].Round(100*time.Microsecond), lat[min(len(lat)-1, len(lat)*99/100)].Round(100*time.Microsecond))
	}

	// Pipeline throughput, in-process: replay everything the initial list holds.
	return pipeline(ctx, env.Config)
}

func pipeline(ctx context.Context, cfg *rest.Config) error {
	fast := rest.CopyConfig(cfg)
	fast.QPS, fast.Burst = 5000, 5000
	dyn, err := dynamic.NewForConfig(fast)
	if err != nil {
		return err
	}
	srcCfg := config.Source{Name: "all", Type: "kubernetes", Kubernetes: &config.KubernetesSource{Resources: []config.Resource{
		{Type: "v1/pods", Events: []string{"create"}}, {Type: "v1/events", Events: []string{"error"}},
	}}}
	log := slog.New(slog.DiscardHandler)
	pb := rest.CopyConfig(fast)
	pb.ContentType = "application/vnd.kubernetes.protobuf"
	pb.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	typed, err := kubernetes.NewForConfig(pb)
	if err != nil {
		return err
	}
	src, err := k8ssource.New(srcCfg, "bench", dyn, log, k8ssource.Options{Workers: 4, Typed: typed})
	if err != nil {
		return err
	}
	src.SetReplay(time.Unix(1, 0), nil) // replay every object: the pipeline's full load
	rcfg := &config.Config{Cluster: config.Cluster{Name: "bench"}, Channels: []config.Channel{{Name: "c", ID: "c", Platform: "discard",
		Bindings: config.Bindings{Sources: []string{"all"}}, RateLimit: config.RateLimit{PerSecond: 1e9, Burst: 1e6}}}}
	r, err := alerting.New(rcfg, map[string]chat.Platform{"discard": discard{}}, alerting.Options{}, prometheus.NewRegistry(), log)
	if err != nil {
		return err
	}
	var emitted atomic.Int64
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Start(rctx) })
	start := time.Now()
	wg.Go(func() {
		_ = src.Start(rctx, func(ctx context.Context, ev event.Event) { emitted.Add(1); r.Emit(ctx, ev) })
	})
	// Done when the count stops growing and the queues are empty.
	last, lastChange := int64(-1), time.Now()
	var end time.Time
	for {
		time.Sleep(20 * time.Millisecond)
		n := emitted.Load()
		if n != last {
			last, lastChange, end = n, time.Now(), time.Now()
			continue
		}
		if r.Pending() == 0 && time.Since(lastChange) > time.Second && n > 0 {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return fmt.Errorf("pipeline did not settle")
		}
	}
	d := end.Sub(start)
	fmt.Printf("bench: list from the API server + pipeline (filter → route → render → deliver): %d events in %s = %.0f events/s\n",
		last, d.Round(time.Millisecond), float64(last)/d.Seconds())
	cancel()
	wg.Wait()
	return nil
}

type discard struct{}

func (discard) Name() string { return "discard" }
func (discard) Post(context.Context, chat.Channel, chat.Message) (chat.MessageRef, error) {
	return chat.MessageRef{ID: "x"}, nil
}
func (discard) Listen(ctx context.Context, _ chat.Handler) error { <-ctx.Done(); return nil }

// parallel runs f for 0..n-1 on 32 workers and returns the first error.
func parallel(n int, f func(int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// sink receives webhook posts and tells waiters when a title arrives.
type sink struct {
	srv     *httptest.Server
	mu      sync.Mutex
	waiters map[string]chan time.Time
	last    time.Time
}

func newSink() *sink {
	s := &sink{waiters: map[string]chan time.Time{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		body, _ := io.ReadAll(r.Body)
		var p webhook.Payload
		_ = json.Unmarshal(body, &p)
		s.mu.Lock()
		s.last = now
		if ch, ok := s.waiters[p.Title]; ok {
			ch <- now
			delete(s.waiters, p.Title)
		}
		s.mu.Unlock()
	}))
	return s
}

func (s *sink) expect(title string) chan time.Time {
	ch := make(chan time.Time, 1)
	s.mu.Lock()
	s.waiters[title] = ch
	s.mu.Unlock()
	return ch
}

func (s *sink) waitQuiet(d time.Duration) {
	for {
		time.Sleep(200 * time.Millisecond)
		s.mu.Lock()
		quiet := time.Since(s.last) > d
		s.mu.Unlock()
		if quiet {
			return
		}
	}
}

// memLimit is the agent's soft memory limit (GOMEMLIMIT), as deployed.
const memLimit = "100MiB"

// cgroupLimitMiB, when set, puts the agent in a memory cgroup with that limit.
var cgroupLimitMiB int

// cgroupDir is the memory cgroup the agent runs in, if any.
var cgroupDir string

// limitMemory moves pid into a new cgroup v1 memory group with the limit.
func limitMemory(pid int) error {
	dir := fmt.Sprintf("/sys/fs/cgroup/memory/kubechat-bench-%d", os.Getpid())
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.Itoa(cgroupLimitMiB<<20)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return err
	}
	cgroupDir = dir
	return nil
}

func cgroupReport() string {
	if cgroupDir == "" {
		return ""
	}
	read := func(f string) string {
		b, _ := os.ReadFile(filepath.Join(cgroupDir, f))
		return strings.TrimSpace(string(b))
	}
	maxUsage, _ := strconv.ParseFloat(read("memory.max_usage_in_bytes"), 64)
	oom := strings.Contains(read("memory.oom_control"), "oom_kill 1")
	return fmt.Sprintf("in a %d MiB memory cgroup: peak usage %.1f MiB, limit hit %s times, OOM kill: %v",
		cgroupLimitMiB, maxUsage/(1<<20), read("memory.failcnt"), oom)
}

type agentProc struct {
	cmd *exec.Cmd
	dir string
}

func startAgent(env *testenv.Env, sinkURL string) (*agentProc, error) {
	dir, err := os.MkdirTemp("", "kubechat-bench-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "kubechat")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kubechat")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build kubechat: %w", err)
	}
	cfg := fmt.Sprintf(`cluster: {name: bench, namespace: kubechat}
log: {format: text, level: warn}
http: {listen: "127.0.0.1:0"}
platforms:
  - {name: sink, type: webhook, settings: {url: %q}}
channels:
  - name: alerts
    platform: sink
    rateLimit: {perSecond: 100000, burst: 100000}
    bindings: {sources: [pods, warnings]}
sources:
  - name: pods
    type: kubernetes
    kubernetes:
      resources:
        - {type: v1/pods, events: [create, error]}
  - name: warnings
    type: kubernetes
    kubernetes:
      resources:
        - {type: v1/events, events: [error]}
`, sinkURL)
	path := filepath.Join(dir, "kubechat.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	a := &agentProc{cmd: exec.Command(bin, "run", "--config", path, "--kubeconfig", env.Kubeconfig()), dir: dir}
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	a.cmd.Stderr = os.Stderr
	// As the Helm chart runs it: a soft memory limit below the container's.
	a.cmd.Env = append(os.Environ(), "GOMEMLIMIT="+memLimit)
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	if cgroupLimitMiB > 0 {
		if err := limitMemory(a.cmd.Process.Pid); err != nil {
			return nil, fmt.Errorf("memory cgroup: %w", err)
		}
	}
	time.Sleep(2 * time.Second) // caches sync on an empty namespace in well under that
	return a, nil
}

// memory returns VmRSS and VmHWM in MiB, and prints the anonymous and
// file-backed (binary text) parts of the RSS.
func (a *agentProc) memory() (rss, hwm float64) {
	var anon, file float64
	defer func() {
		fmt.Printf("bench: agent RSS breakdown: anonymous %.1f MiB, file-backed (binary) %.1f MiB\n", anon, file)
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		case "RssAnon:":
			anon = kb / 1024
		case "RssFile:":
			file = kb / 1024
		}
	}
	return rss, hwm
}

func (a *agentProc) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	_ = a.cmd.Wait()
	os.RemoveAll(a.dir)
	if cgroupDir != "" {
		_ = os.Remove(cgroupDir)
	}
}
