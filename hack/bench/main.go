// Command bench ("make bench") measures the alert pipeline against a real
// control plane and prints the figures:
//
//   - a scale curve of the real kubechat binary at each of -sizes pods
//     (default 1k, 10k and 50k; Events at 5× and a Deployment per 10 pods):
//     start to ready, RSS and its anonymous and file-backed parts, the Go
//     heap, change → webhook sink latency p50 and p99, CPU time per 1,000
//     watch events (pod updates), and the memory slope per pod between
//     sizes;
//   - pipeline throughput: informer → filter → route → render → deliver to
//     a discarding platform, replaying every pod and Warning Event;
//   - kubectl get pods in-process and in a command pod (isolation: pod).
//
// Smaller runs: go run ./hack/bench -sizes 1000,5000 -pod-commands 0.
// With -hold, the control plane stays up after the run, with the cluster
// as grown, until the command is interrupted: to profile an agent
// against it (the run prints its kubeconfig).
package main

import (
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
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/webhook"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	k8ssource "github.com/kubechat/kubechat/internal/source/kubernetes"
	"github.com/kubechat/kubechat/internal/testenv"
)

func main() {
	sizesFlag := flag.String("sizes", "1000,10000,50000", "pod counts of the scale curve, ascending (Events at 5×, a Deployment per 10 pods)")
	latencyPods := flag.Int("latency-pods", 100, "pods created one by one at each size to measure alert latency")
	flag.IntVar(&podCommandRuns, "pod-commands", 20, "runs of kubectl get pods in-process and in a command pod (isolation: pod); 0 skips")
	flag.IntVar(&concurrentRuns, "concurrent-commands", 40, "runs of kubectl get pods -A at each of 1, 5 and 20 at once, over 1,000 pods; 0 skips")
	readme := flag.String("readme", "", "also write the README's performance paragraph into this file, between its markers (e.g. README.md)")
	agents := flag.String("agent", "", "kubechat binaries to measure, comma-separated, each at every size (default: build ./cmd/kubechat, stripped), e.g. to compare two versions")
	flag.IntVar(&cgroupLimitMiB, "cgroup-limit", 0, "also run the agent in a memory cgroup with this limit in MiB, as a container limit would (cgroup v1, root)")
	flag.BoolVar(&hold, "hold", false, "keep the control plane and the grown cluster up after the run, until interrupted")
	flag.Parse()
	sizes, err := parseSizes(*sizesFlag)
	if err == nil {
		memLimit, err = chartMemLimit()
	}
	if err == nil {
		began := time.Now()
		if *agents != "" {
			agentBins = strings.Split(*agents, ",")
		}
		err = run(sizes, *latencyPods, *readme)
		fmt.Printf("bench: done in %s\n", time.Since(began).Round(time.Second))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(sizes []int, nLatency int, readme string) error {
	ctx, stop := context.WithTimeout(context.Background(), 2*time.Hour)
	defer stop()
	fmt.Println("bench: starting the control plane")
	env, err := testenv.Start(ctx, testenv.Options{Nodes: 1})
	if err != nil {
		return err
	}
	defer env.Stop()
	if hold {
		defer holdCluster(env)
	}
	fast := rest.CopyConfig(env.Config)
	fast.QPS, fast.Burst = 5000, 5000
	fast.ContentType = "application/vnd.kubernetes.protobuf" // cheaper to create 300k objects with
	cs, err := kubernetes.NewForConfig(fast)
	if err != nil {
		return err
	}
	for _, ns := range []string{"bench", "latency", "kubechat"} {
		if err := env.CreateNamespace(ctx, ns); err != nil {
			return err
		}
	}
	var f figures
	if podCommandRuns > 0 {
		if err := podCommands(ctx, env, podCommandRuns, &f); err != nil {
			return fmt.Errorf("pod commands: %w", err)
		}
	}

	if concurrentRuns > 0 {
		if err := concurrentCommands(ctx, env, cs, concurrentRuns, &f); err != nil {
			return fmt.Errorf("concurrent commands: %w", err)
		}
	}

	// The agent, as users run it, with a loopback webhook sink, at each size.
	sink := newSink()
	defer sink.srv.Close()
	points, err := scaleCurve(ctx, env, cs, sink, sizes, nLatency)
	printCurve(points)
	if err != nil {
		return err
	}
	for _, p := range points {
		if p.agent == agentBins[len(agentBins)-1] {
			f.points = append(f.points, p)
		}
	}

	// Pipeline throughput, in-process: replay everything the initial list holds.
	if err := pipeline(ctx, env.Config); err != nil {
		return err
	}
	text := f.paragraph()
	fmt.Print("bench: the README's performance paragraph:\n" + text)
	if readme != "" {
		return writeReadme(readme, text)
	}
	return nil
}

// hold is the -hold flag.
var hold bool

// holdCluster keeps env up until SIGINT or SIGTERM.
func holdCluster(env *testenv.Env) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	fmt.Printf("bench: holding the cluster until interrupted; kubeconfig %s\n", env.Kubeconfig())
	<-sig
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
}

func newSink() *sink {
	s := &sink{waiters: map[string]chan time.Time{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		body, _ := io.ReadAll(r.Body)
		var p webhook.Payload
		_ = json.Unmarshal(body, &p)
		s.mu.Lock()
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

// memLimit is the agent's soft memory limit (GOMEMLIMIT) in bytes, as the
// chart sets it: 90% of its default memory limit.
var memLimit int64

// chartMemLimit reads the chart's default memory limit from its values.
func chartMemLimit() (int64, error) {
	const path = "helm/kubechat/values.yaml"
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("the chart's memory limit: %w (run from the repository's root)", err)
	}
	var v struct {
		Resources struct {
			Limits struct {
				Memory string `json:"memory"`
			} `json:"limits"`
		} `json:"resources"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	q, err := resource.ParseQuantity(v.Resources.Limits.Memory)
	if err != nil {
		return 0, fmt.Errorf("%s: resources.limits.memory: %w", path, err)
	}
	return q.Value() * 9 / 10, nil
}

// memLimitMiB is memLimit as GOMEMLIMIT would write it in MiB, for the
// figures.
func memLimitMiB() string { return fmt.Sprintf("%.0fMiB", float64(memLimit)/(1<<20)) }

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
	cmd     *exec.Cmd
	dir     string
	started time.Time
}

// agentBins are the kubechat binaries to measure: the -agent flag's, or
// one built once, stripped and static as released.
var agentBins []string

func buildAgent() (string, error) {
	if len(agentBins) > 0 {
		return agentBins[0], nil
	}
	dir, err := os.MkdirTemp("", "kubechat-bench-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kubechat")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/kubechat")
	// As the image builds it: static, without cgo. A cgo build links
	// dynamically and exports every symbol (kustomize links package
	// plugin), 55 MB more binary and more of it resident.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build kubechat: %w", err)
	}
	agentBins = []string{bin}
	return bin, nil
}

// startAgent runs the agent with its HTTP server on listen; it watches
// pods, Deployments and Warning Events and alerts to sinkURL.
func startAgent(env *testenv.Env, bin, sinkURL, listen string) (*agentProc, error) {
	dir, err := os.MkdirTemp("", "kubechat-bench-")
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`cluster: {name: bench, namespace: kubechat}
log: {format: text, level: warn}
http: {listen: %q}
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
        - {type: apps/v1/deployments, events: [error]}
  - name: warnings
    type: kubernetes
    kubernetes:
      resources:
        - {type: v1/events, events: [error]}
`, listen, sinkURL)
	path := filepath.Join(dir, "kubechat.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	a := &agentProc{cmd: exec.Command(bin, "run", "--config", path, "--kubeconfig", env.Kubeconfig()), dir: dir, started: time.Now()}
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	a.cmd.Stderr = os.Stderr
	// As the Helm chart runs it: a soft memory limit below the container's.
	a.cmd.Env = append(os.Environ(), fmt.Sprintf("GOMEMLIMIT=%d", memLimit))
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	if cgroupLimitMiB > 0 {
		if err := limitMemory(a.cmd.Process.Pid); err != nil {
			return nil, fmt.Errorf("memory cgroup: %w", err)
		}
	}
	return a, nil
}

func (a *agentProc) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	_ = a.cmd.Wait()
	os.RemoveAll(a.dir)
	if cgroupDir != "" {
		_ = os.Remove(cgroupDir)
	}
}
