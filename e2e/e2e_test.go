//go:build e2e

// Package e2e runs the kubechat agent against a real control plane (etcd,
// kube-apiserver, controller-manager, scheduler and kwok nodes), started once
// for the whole package.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/exepages"
	"github.com/kubechat/kubechat/internal/testenv"
)

var (
	env      *testenv.Env
	kubechat string // the agent binary, built once
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kubechat-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kubechat = filepath.Join(dir, "kubechat")
	build := exec.Command("go", "build", "-o", kubechat, "../cmd/kubechat")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build kubechat:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	testenv.Main(m, &env, testenv.Options{Nodes: 2})
}

// agent is a running "kubechat run" process.
type agent struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	log  strings.Builder
	done chan error
}

var listening = regexp.MustCompile(`msg="http server listening" addr=(\S+)`)

func startAgent(t *testing.T, config string) *agent {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "kubechat.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(config), 0o600))
	return startAgentArgs(t, "run", "--config", cfgPath, "--kubeconfig", env.Kubeconfig())
}

// startAgentArgs runs the agent binary with args and waits until it listens.
func startAgentArgs(t *testing.T, args ...string) *agent {
	t.Helper()
	a := &agent{done: make(chan error, 1)}
	a.cmd = exec.Command(kubechat, args...)
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := a.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, a.cmd.Start())
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			a.mu.Lock()
			a.log.WriteString(line + "\n")
			a.mu.Unlock()
			if m := listening.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		a.done <- a.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("agent log:\n%s", a.logs())
		}
	})
	select {
	case a.addr = <-addr:
	case err := <-a.done:
		t.Fatalf("agent exited at start (%v):\n%s", err, a.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not listen within 30s:\n%s", a.logs())
	}
	return a
}

func (a *agent) logs() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

func (a *agent) get(path string) (int, string, error) {
	resp, err := http.Get("http://" + a.addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitOpen waits up to 30 s until the agent holds an open connection to a
// fake chat server, as connected reports.
func waitOpen(t *testing.T, what string, connected func() int) {
	t.Helper()
	eventually(t, 30*time.Second, what, func() error {
		if connected() == 0 {
			return fmt.Errorf("not connected")
		}
		return nil
	})
}

// waitItem waits up to 30 s until list holds an item for which ok is
// true, and returns the first one.
func waitItem[T any](t *testing.T, what string, list func() []T, ok func(T) bool) T {
	t.Helper()
	var found T
	eventually(t, 30*time.Second, what, func() error {
		items := list()
		for _, item := range items {
			if ok(item) {
				found = item
				return nil
			}
		}
		return fmt.Errorf("none of %d items", len(items))
	})
	return found
}

func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const agentConfig = `cluster:
  name: e2e
  namespace: lifecycle
log:
  format: text
  level: debug
http:
  listen: 127.0.0.1:0
platforms:
  - name: console
    type: log
channels:
  - name: alerts
    platform: console
    bindings:
      sources: [workloads]
sources:
  - name: workloads
    type: kubernetes
    kubernetes:
      namespaces:
        include: [lifecycle]
      resources:
        - type: apps/v1/deployments
          events: [create]
        - type: v1/pods
          events: [create]
`

// TestAgentLifecycle: "kubechat run" starts with a config, becomes ready,
// reports a new Deployment and its pod (Running on a kwok node), and shuts
// down on SIGTERM within 10 s.
func TestAgentLifecycle(t *testing.T) {
	ctx := t.Context()
	// Objects that exist before the agent starts are never reported.
	require.NoError(t, env.CreateNamespace(ctx, "lifecycle"))
	_, err := env.Client.AppsV1().Deployments("lifecycle").Create(ctx, testenv.Deployment("before", nil), metav1.CreateOptions{})
	require.NoError(t, err)

	a := startAgent(t, agentConfig)
	eventually(t, 30*time.Second, "/readyz", func() error {
		code, body, err := a.get("/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%d %s", code, body)
		}
		return err
	})
	code, body, err := a.get("/healthz")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)
	// Ready, it released its binary's pages (they are read a page at a
	// time from then on), and it works on below.
	eventually(t, 10*time.Second, "the binary's pages released", func() error { return exepages.Released(a.cmd.Process.Pid) })

	_, err = env.Client.AppsV1().Deployments("lifecycle").Create(ctx, testenv.Deployment("web", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	pod, err := env.WaitForPod(ctx, "lifecycle", "app=web", func(p corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && testenv.PodReady(p)
	})
	require.NoError(t, err)
	require.Contains(t, env.Nodes, pod.Spec.NodeName)

	eventually(t, 20*time.Second, "alerts in the agent log", func() error {
		logs := a.logs()
		for _, want := range []string{`title="Deployment lifecycle/web created"`, `title="Pod lifecycle/` + pod.Name + ` created"`} {
			if !strings.Contains(logs, want) {
				return fmt.Errorf("missing %s", want)
			}
		}
		return nil
	})
	require.NotContains(t, a.logs(), "lifecycle/before", "pre-existing objects are not reported")

	// The queue counts a delivery once the platform has answered.
	delivered := regexp.MustCompile(`kubechat_notifications_total\{channel="[a-z-]+",platform="[a-z-]+",result="delivered"\} [2-9]`)
	eventually(t, 10*time.Second, "deliveries counted", func() error {
		code, body, err = a.get("/metrics")
		if err != nil || code != http.StatusOK || !delivered.MatchString(body) {
			return fmt.Errorf("not yet: %d %v", code, err)
		}
		return nil
	})
	require.Contains(t, body, `kubechat_build_info{cluster="e2e"`)

	start := time.Now()
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-a.done:
		require.NoError(t, err, "clean exit on SIGTERM")
		require.Less(t, time.Since(start), 10*time.Second)
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop within 10s of SIGTERM")
	}
	require.Contains(t, a.logs(), "kubechat stopped")
}

// TestAgentRefusesBadConfig: a broken config stops the agent at once with a positioned error.
func TestAgentRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(agentConfig, "events: [create]", "events: [crate]", 1)), 0o600))
	out, err := exec.CommandContext(context.Background(), kubechat, "run", "--config", path, "--kubeconfig", env.Kubeconfig()).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), path+`:25: sources[0].kubernetes.resources[0].events[0]: unknown event type "crate"`)
}
