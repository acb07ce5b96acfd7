package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubechat/kubechat/internal/testenv"
)

// The scale curve's shape: Events at 5× pods (one in 50 a Warning, which
// the agent caches), a Deployment per 10 pods.
const (
	eventsPerPod  = 5
	podsPerDeploy = 10
)

// scalePoint is what one agent binary measured at one cluster size.
type scalePoint struct {
	agent                     string
	pods, events, deployments int
	// ready is from the process's start to /readyz answering 200.
	ready time.Duration
	// rss, anon and file (MiB) once it settled; heap is the Go heap in use.
	rss, anon, file, heap float64
	// rssEnd is the RSS once latency and CPU were measured: what the
	// agent's work since its start brought back of the binary's pages.
	rssEnd   float64
	p50, p99 time.Duration
	// cpuPer1k is the agent's CPU time per 1,000 watch events (pod updates).
	cpuPer1k time.Duration
}

// parseSizes reads the -sizes flag: pod counts, comma-separated, ascending.
func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-sizes %q: %q is not a positive pod count", s, f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("-sizes %q: sizes must ascend", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// scaleCurve grows the cluster through sizes and, at each, starts a fresh
// agent and measures it: start to ready, memory once settled, and change →
// sink latency over nLatency pods. Objects are added to those of the
// previous size, so the whole curve creates the largest size once.
func scaleCurve(ctx context.Context, env *testenv.Env, cs kubernetes.Interface, sink *sink, sizes []int, nLatency int) ([]scalePoint, error) {
	var points []scalePoint
	var pods, events, deploys int
	for _, size := range sizes {
		start := time.Now()
		if err := grow(ctx, env, cs, &pods, size, &deploys, size/podsPerDeploy, &events, size*eventsPerPod); err != nil {
			return points, err
		}
		fmt.Printf("bench: cluster at %d pods, %d Events, %d Deployments (%s to create and run)\n", pods, events, deploys, time.Since(start).Round(time.Second))
		if _, err := buildAgent(); err != nil {
			return points, err
		}
		for _, bin := range agentBins {
			p, err := measureAgent(ctx, env, cs, sink, bin, size, nLatency)
			if err != nil {
				return points, fmt.Errorf("%s at %d pods: %w", bin, size, err)
			}
			p.agent, p.pods, p.events, p.deployments = bin, pods, events, deploys
			points = append(points, p)
		}
	}
	return points, nil
}

// grow creates pods, Deployments and Events up to the given counts and
// waits until kwok has every pod running.
func grow(ctx context.Context, env *testenv.Env, cs kubernetes.Interface, pods *int, toPods int, deploys *int, toDeploys int, events *int, toEvents int) error {
	from := *pods
	if err := parallel(toPods-from, func(i int) error {
		_, err := cs.CoreV1().Pods("bench").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%06d", from+i), Labels: map[string]string{"app": "bench"}},
			Spec:       corev1.PodSpec{NodeName: env.Nodes[0], Containers: []corev1.Container{{Name: "c", Image: "registry.example/bench:1"}}},
		}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("create pods: %w", err)
	}
	*pods = toPods
	from = *deploys
	if err := parallel(toDeploys-from, func(i int) error {
		name := fmt.Sprintf("deploy-%05d", from+i)
		labels := map[string]string{"app": name}
		_, err := cs.AppsV1().Deployments("bench").Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/bench:1",
						Env: []corev1.EnvVar{{Name: "MODE", Value: "bench"}}}}}}},
		}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("create Deployments: %w", err)
	}
	*deploys = toDeploys
	from = *events
	if err := parallel(toEvents-from, func(i int) error {
		n := from + i
		typ := corev1.EventTypeNormal
		if n%50 == 0 {
			typ = corev1.EventTypeWarning
		}
		_, err := cs.CoreV1().Events("bench").Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("ev-%07d", n)},
			InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: "bench", Name: fmt.Sprintf("pod-%06d", n%toPods)},
			Type:           typ, Reason: "BenchReason", Message: "a benchmark event with a message of a typical length for kubelet events",
			Source: corev1.EventSource{Component: "kubelet", Host: env.Nodes[0]}, Count: 1,
		}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("create Events: %w", err)
	}
	*events = toEvents
	// kwok marks pods running and the controller-manager makes each
	// Deployment's ReplicaSet in the background, the latter at its own
	// client's 20 requests a second, minutes after the Deployments were
	// made; the agent should start on a cluster at rest, as after the
	// objects' own start, not share the cores with that catching up.
	if err := waitRunning(ctx, cs); err != nil {
		return err
	}
	start := time.Now()
	if err := waitObserved(ctx, cs); err != nil {
		return err
	}
	fmt.Printf("bench: the controller-manager caught up %s after the pods ran\n", time.Since(start).Round(time.Second))
	return nil
}

// waitObserved waits until the controller-manager has handled every
// Deployment and ReplicaSet in the bench namespace: each one's status
// observed its spec.
func waitObserved(ctx context.Context, cs kubernetes.Interface) error {
	return waitFor(30*time.Minute, 5*time.Second, "the controller-manager is still behind", func() (string, error) {
		return unobserved(ctx, cs)
	})
}

// waitFor asks behind every interval until it names nothing, and fails
// after limit with what it still named and what that means.
func waitFor(limit, interval time.Duration, what string, behind func() (string, error)) error {
	deadline := time.Now().Add(limit)
	for {
		b, err := behind()
		if err != nil || b == "" {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s after %.0f minutes (e.g. %s)", what, limit.Minutes(), b)
		}
		time.Sleep(interval)
	}
}

// rolledOut reports whether the deployment controller is done with d: its
// newest ReplicaSet is the available one.
func rolledOut(d appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing {
			return c.Reason == "NewReplicaSetAvailable"
		}
	}
	return false
}

// unobserved names a Deployment or ReplicaSet whose status has not yet
// observed its spec, or is empty when there is none.
func unobserved(ctx context.Context, cs kubernetes.Interface) (string, error) {
	deploys, err := cs.AppsV1().Deployments("bench").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return "", err
	}
	owned := map[types.UID]bool{}
	for _, d := range deploys.Items {
		if d.Status.ObservedGeneration < d.Generation || !rolledOut(d) {
			return "Deployment " + d.Name, nil
		}
	}
	sets, err := cs.AppsV1().ReplicaSets("bench").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return "", err
	}
	for _, rs := range sets.Items {
		if rs.Status.ObservedGeneration < rs.Generation {
			return "ReplicaSet " + rs.Name, nil
		}
		if ref := metav1.GetControllerOf(&rs); ref != nil {
			owned[ref.UID] = true
		}
	}
	for _, d := range deploys.Items {
		if !owned[d.UID] {
			return "Deployment " + d.Name + " (no ReplicaSet yet)", nil
		}
	}
	return "", nil
}

// waitRunning waits until no pod in the bench namespace is not Running.
func waitRunning(ctx context.Context, cs kubernetes.Interface) error {
	return waitFor(15*time.Minute, time.Second, "pods still not running", func() (string, error) {
		l, err := cs.CoreV1().Pods("bench").List(ctx, metav1.ListOptions{FieldSelector: "status.phase!=Running", Limit: 1})
		if err != nil || len(l.Items) == 0 {
			return "", err
		}
		return l.Items[0].Name, nil
	})
}

// measureAgent starts a fresh agent, times it to ready, reads its memory
// once it settled and measures change → sink latency.
func measureAgent(ctx context.Context, env *testenv.Env, cs kubernetes.Interface, sink *sink, bin string, size, nLatency int) (scalePoint, error) {
	var p scalePoint
	// A fresh start: no state of a previous agent, which would have this
	// one replay every pod created since (a hand-over, not a start).
	if err := cs.CoreV1().ConfigMaps("kubechat").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return p, err
	}
	if err := cs.CoordinationV1().Leases("kubechat").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return p, err
	}
	addr, err := freeAddr()
	if err != nil {
		return p, err
	}
	agent, err := startAgent(env, bin, sink.srv.URL, addr)
	if err != nil {
		return p, err
	}
	defer agent.stop()
	if p.ready, err = waitReady(ctx, addr, agent.started); err != nil {
		return p, err
	}
	// Settled: what the start allocated is collected and the caches hold
	// the cluster. The agent reports nothing from its initial list.
	time.Sleep(5 * time.Second)
	p.rss, p.anon, p.file = agent.rss()
	p.heap = heapInUse(addr)
	fmt.Printf("bench: agent %s at %d pods: ready in %s, RSS %.1f MiB (anonymous %.1f, file-backed %.1f), Go heap in use %.1f MiB\n",
		bin, size, p.ready.Round(time.Millisecond), p.rss, p.anon, p.file, p.heap)
	lat, err := latency(ctx, cs, sink, fmt.Sprintf("lat-%d-%d", size, agent.cmd.Process.Pid), nLatency)
	if err != nil {
		return p, err
	}
	if r := cgroupReport(); r != "" {
		fmt.Println("bench: agent " + r)
	}
	if len(lat) > 0 {
		p.p50, p.p99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	}
	if p.cpuPer1k, err = churnCPU(ctx, cs, agent, min(size, churnPods)); err != nil {
		return p, err
	}
	p.rssEnd, _, _ = agent.rss()
	return p, nil
}

// churnPods bounds the pods updated to measure CPU per watch event.
const churnPods = 2000

// churnCPU updates n of the bench pods (an annotation each: one watch
// event) and returns the agent's CPU time per 1,000 of them, from the
// first update until the agent is idle again.
func churnCPU(ctx context.Context, cs kubernetes.Interface, agent *agentProc, n int) (time.Duration, error) {
	before := agent.cpu()
	pid := agent.cmd.Process.Pid
	if err := parallel(n, func(i int) error {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"bench/churn":"%d-%d"}}}`, pid, i)
		_, err := cs.CoreV1().Pods("bench").Patch(ctx, fmt.Sprintf("pod-%06d", i), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	}); err != nil {
		return 0, fmt.Errorf("update pods: %w", err)
	}
	// Idle: less than 20ms of CPU in a second (leader renewals, metrics).
	last := agent.cpu()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		now := agent.cpu()
		if now-last < 20*time.Millisecond {
			break
		}
		last = now
	}
	return (last - before) * 1000 / time.Duration(n), nil
}

// cpu is the agent's user and system CPU time so far.
func (a *agentProc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks (100 per second).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// latency creates n pods one at a time and returns the sorted times from
// each creation to the sink receiving its alert.
func latency(ctx context.Context, cs kubernetes.Interface, sink *sink, prefix string, n int) ([]time.Duration, error) {
	var lat []time.Duration
	for i := range n {
		name := fmt.Sprintf("%s-%04d", prefix, i)
		ch := sink.expect("Pod latency/" + name + " created")
		t0 := time.Now()
		if _, err := cs.CoreV1().Pods("latency").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/bench:1"}}}}, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		select {
		case t1 := <-ch:
			lat = append(lat, t1.Sub(t0))
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("no alert for pod %s within 30s", name)
		}
	}
	slices.Sort(lat)
	return lat, nil
}

// printCurve prints the scale table and the memory slope per pod, for
// each agent binary.
func printCurve(points []scalePoint) {
	fmt.Println("bench: scale curve (fresh agent per size, GOMEMLIMIT=" + memLimitMiB() + " as the chart sets it)")
	for _, bin := range agentBins {
		if len(agentBins) > 1 {
			fmt.Println("  agent " + bin)
		}
		fmt.Printf("  %7s %8s %6s | %8s | %8s %9s %9s %9s | %8s %8s | %9s | %8s\n", "pods", "Events", "Deploy", "ready", "RSS MiB", "anon MiB", "file MiB", "heap MiB", "p50", "p99", "CPU/1k ev", "RSS end")
		var mine []scalePoint
		for _, p := range points {
			if p.agent != bin {
				continue
			}
			mine = append(mine, p)
			fmt.Printf("  %7d %8d %6d | %8s | %8.1f %9.1f %9.1f %9.1f | %8s %8s | %9s | %8.1f\n", p.pods, p.events, p.deployments,
				p.ready.Round(time.Millisecond), p.rss, p.anon, p.file, p.heap, p.p50.Round(100*time.Microsecond), p.p99.Round(100*time.Microsecond),
				p.cpuPer1k.Round(time.Millisecond), p.rssEnd)
		}
		for i := 1; i < len(mine); i++ {
			a, b := mine[i-1], mine[i]
			dp := float64(b.pods - a.pods)
			fmt.Printf("  slope %d → %d pods: anonymous %.2f KiB/pod, RSS %.2f KiB/pod, Go heap %.2f KiB/pod\n", a.pods, b.pods,
				(b.anon-a.anon)*1024/dp, (b.rss-a.rss)*1024/dp, (b.heap-a.heap)*1024/dp)
		}
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls the agent's /readyz until it answers 200 and returns the
// time since started.
func waitReady(ctx context.Context, addr string, started time.Time) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if err != nil {
			return 0, err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(started), nil
			}
		}
		if time.Since(started) > 5*time.Minute {
			return 0, fmt.Errorf("agent not ready after 5 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// heapInUse reads go_memstats_heap_inuse_bytes from the agent's /metrics, in MiB.
func heapInUse(addr string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f / (1 << 20)
		}
	}
	return 0
}

// rss returns VmRSS and its anonymous and file-backed parts, in MiB.
func (a *agentProc) rss() (rss, anon, file float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		return 0, 0, 0
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
		case "RssAnon:":
			anon = kb / 1024
		case "RssFile:":
			file = kb / 1024
		}
	}
	return rss, anon, file
}
