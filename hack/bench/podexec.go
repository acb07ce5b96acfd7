package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/podrun"
	"github.com/kubechat/kubechat/internal/podrun/podruntest"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/kubectl"
)

// podCommandRuns is how many times each mode runs "kubectl get pods".
var podCommandRuns int

// podCommands measures "kubectl get pods" in-process and in a command pod
// (isolation: pod), as the same ServiceAccount. kwok runs no containers:
// podruntest plays the kubelet (a local "kubechat exec" process, its log
// published through kwok, its exit written to the pod's status), so the pod
// figure is the control-plane part of the cost (create, schedule, start,
// log, status, watch, delete) plus a process start; a real node adds the
// container runtime's start and, on a cold node, the image pull.
func podCommands(ctx context.Context, env *testenv.Env, n int, f *figures) error {
	const ns, cmdNS, img = "podbench", "podbench-cmd", "registry.example/kubechat:bench"
	for _, name := range []string{ns, cmdNS} {
		if err := env.CreateNamespace(ctx, name); err != nil {
			return err
		}
	}
	if _, err := env.ServiceAccountConfig(ctx, cmdNS, "reader"); err != nil {
		return err
	}
	if err := env.BindGroupToClusterRole(ctx, "system:serviceaccounts:"+cmdNS, "view"); err != nil {
		return err
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("web", nil), metav1.CreateOptions{}); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kubechat-podbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := podruntest.BuildKubechat(dir)
	if err != nil {
		return err
	}
	kubelet, err := podruntest.Start(ctx, env, podruntest.Options{Images: map[string]string{img: bin}})
	if err != nil {
		return err
	}
	defer kubelet.Stop()

	inProcess, err := kubectl.New("kubectl", config.Raw{}, executor.Deps{RESTConfig: env.Config})
	if err != nil {
		return err
	}
	inPod, err := podrun.Wrap(inProcess, podrun.New(env.Client, "bench", nil),
		podrun.Options{Type: "kubectl", Pod: config.PodSettings{Image: img}.WithDefaults()})
	if err != nil {
		return err
	}
	// The pod's phases are read from the metric the agent serves.
	reg := prometheus.NewRegistry()
	if err := podrun.RegisterMetrics(reg); err != nil {
		return err
	}
	req := executor.Request{Args: []string{"get", "pods"}, Namespace: ns, Identity: executor.Identity{
		User: "system:serviceaccount:" + cmdNS + ":reader", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + cmdNS, "system:authenticated"}}}
	for _, mode := range []struct {
		name string
		ex   executor.Executor
	}{{"in-process", inProcess}, {"pod", inPod}} {
		var lat []time.Duration
		for range n {
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			t0 := time.Now()
			res, err := mode.ex.Execute(cctx, req)
			d := time.Since(t0)
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", mode.name, err)
			}
			if res.ExitCode != 0 {
				return fmt.Errorf("%s: exit %d: %s", mode.name, res.ExitCode, res.Errors)
			}
			lat = append(lat, d)
		}
		slices.Sort(lat)
		p50 := lat[len(lat)/2]
		if mode.name == "in-process" {
			f.inProcess = p50
		} else {
			f.inPod = p50
		}
		fmt.Printf("bench: kubectl get pods %s over %d runs: p50 %s, p99 %s\n", mode.name, n,
			p50.Round(time.Millisecond), lat[min(len(lat)-1, len(lat)*99/100)].Round(time.Millisecond))
	}
	split, err := podPhases(reg)
	if err != nil {
		return err
	}
	fmt.Printf("bench: kubectl get pods in a pod, mean per phase: %s\n", split)
	return nil
}

// podPhases reads kubechat_command_pod_phase_seconds from reg: the mean
// time of each phase, in the order of the pod's life.
func podPhases(reg prometheus.Gatherer) (string, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return "", err
	}
	mean := map[string]time.Duration{}
	for _, mf := range mfs {
		if mf.GetName() != "kubechat_command_pod_phase_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h.GetSampleCount() == 0 {
				continue
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "phase" {
					mean[l.GetValue()] = time.Duration(h.GetSampleSum() / float64(h.GetSampleCount()) * float64(time.Second))
				}
			}
		}
	}
	var parts []string
	for _, ph := range []string{"create", "schedule", "start", "run", "collect"} {
		d, ok := mean[ph]
		if !ok {
			return "", fmt.Errorf("no %s phase was observed", ph)
		}
		parts = append(parts, fmt.Sprintf("%s %s", ph, d.Round(time.Millisecond)))
	}
	return strings.Join(parts, ", "), nil
}
