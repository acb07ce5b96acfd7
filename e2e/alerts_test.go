//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/chat/webhook"
	"github.com/kubechat/kubechat/internal/testenv"
)

// sink is a loopback webhook receiver that records every payload. Like
// an idempotent receiver, it keeps a request whose Idempotency-Key it
// already took only in repeats. Its mode makes it fail: "down" answers
// 503, "hang" holds every request for hang before answering.
type sink struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []webhook.Payload
	keys    map[string]bool
	repeats int
	refused int
	mode    string
	hang    time.Duration
}

func newSink(t *testing.T) *sink {
	s := &sink{keys: map[string]bool{}, mode: "up"}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		mode, hang := s.mode, s.hang
		if mode == "down" {
			s.refused++
			s.mu.Unlock()
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Unlock()
		if mode == "hang" {
			time.Sleep(hang)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if key := r.Header.Get("Idempotency-Key"); key != "" && s.keys[key] {
			s.repeats++
			return
		} else if key != "" {
			s.keys[key] = true
		}
		s.got = append(s.got, p)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// setMode switches the sink between up, down and hang.
func (s *sink) setMode(mode string, hang time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode, s.hang = mode, hang
}

// all returns every payload kept.
func (s *sink) all() []webhook.Payload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]webhook.Payload(nil), s.got...)
}

// matching returns the payloads for channel whose title contains substr.
func (s *sink) matching(channel, substr string) []webhook.Payload {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []webhook.Payload
	for _, p := range s.got {
		if p.Channel == channel && strings.Contains(p.Title, substr) {
			out = append(out, p)
		}
	}
	return out
}

// agentBase is the start of every e2e agent config: cluster e2e with its
// state in ns, text logs, and the HTTP server on a free loopback port.
func agentBase(ns string) string {
	return fmt.Sprintf(`cluster:
  name: e2e
  namespace: %s
log:
  format: text
http:
  listen: 127.0.0.1:0
`, ns)
}

func alertConfig(sinkURL, ns string) string {
	return agentBase(ns) + fmt.Sprintf(`platforms:
  - name: sink
    type: webhook
    settings:
      url: %[1]s
channels:
  - name: transitions
    platform: sink
    bindings:
      sources: [workloads]
  - name: warnings
    platform: sink
    bindings:
      sources: [warnings]
  - name: changes
    platform: sink
    bindings:
      sources: [changes]
sources:
  - name: workloads
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[2]s]
      resources:
        - type: v1/pods
          events: [error]
  - name: warnings
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[2]s]
      resources:
        - type: v1/events
          events: [error]
  - name: changes
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[2]s]
      resources:
        - type: v1/configmaps
          events: [create]
`, sinkURL, ns)
}

func waitReady(t *testing.T, a *agent) {
	t.Helper()
	eventually(t, 30*time.Second, "/readyz", func() error {
		code, body, err := a.get("/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%d %s", code, body)
		}
		return err
	})
}

// TestCrashLoopTransitionAlert: a crash-looping pod gives exactly one alert,
// and its recovery edits that alert into "resolved"; restarting the agent
// in between alerts nothing again.
func TestCrashLoopTransitionAlert(t *testing.T) {
	ctx := t.Context()
	const ns = "crashloop"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, env.CreateNamespace(ctx, "kubechat"))
	s := newSink(t)
	a := startAgent(t, alertConfig(s.srv.URL, ns))
	waitReady(t, a)

	_, err := env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("broken", map[string]string{testenv.CrashLoopLabel: "true"}), metav1.CreateOptions{})
	require.NoError(t, err)
	eventually(t, 30*time.Second, "a failing alert", func() error {
		if n := len(s.matching("transitions", "is failing (CrashLoopBackOff)")); n != 1 {
			return fmt.Errorf("%d failing alerts", n)
		}
		return nil
	})
	alert := s.matching("transitions", "is failing")[0]
	require.Equal(t, "post", alert.Action)

	// A restart re-lists the failing pod: no second alert.
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-a.done)
	a = startAgent(t, alertConfig(s.srv.URL, ns))
	waitReady(t, a)

	pod, err := env.WaitForPod(ctx, ns, "app=broken", func(corev1.Pod) bool { return true })
	require.NoError(t, err)
	patch := []byte(`{"metadata":{"labels":{"` + testenv.CrashLoopLabel + `":null}}}`)
	_, err = env.Client.CoreV1().Pods(ns).Patch(ctx, pod.Name, "application/merge-patch+json", patch, metav1.PatchOptions{})
	require.NoError(t, err)
	eventually(t, 30*time.Second, "the alert resolved", func() error {
		if n := len(s.matching("transitions", "Resolved:")); n != 1 {
			return fmt.Errorf("%d resolutions", n)
		}
		return nil
	})
	resolved := s.matching("transitions", "Resolved:")[0]
	require.Equal(t, "update", resolved.Action)
	require.Equal(t, alert.ID, resolved.ID, "the same message is edited")
	// Barrier: another pod's alert on the same channel comes after anything
	// the broken pod's changes could still have queued.
	crashLoop(t, ns, "sentinel")
	eventually(t, 60*time.Second, "the sentinel's alert", func() error {
		if len(s.matching("transitions", "Pod "+ns+"/sentinel ")) == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	require.Len(t, s.matching("transitions", "broken"), 2, "no second failing alert: the alert and its resolution only")
}

// TestRepeatedWarningsAreGrouped: 200 identical Warning events within 30 s
// give one message, whose count is edited in place.
func TestRepeatedWarningsAreGrouped(t *testing.T) {
	ctx := t.Context()
	const ns = "noisy"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, env.CreateNamespace(ctx, "kubechat"))
	s := newSink(t)
	a := startAgent(t, alertConfig(s.srv.URL, ns))
	waitReady(t, a)

	for i := range 200 {
		_, err := env.Client.CoreV1().Events(ns).Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("web.%d", i)},
			InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: "web"},
			Type:           corev1.EventTypeWarning, Reason: "Unhealthy", Message: "Readiness probe failed",
			FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	eventually(t, 30*time.Second, "the count reaches 200", func() error {
		got := s.matching("warnings", "(Unhealthy)")
		if len(got) == 0 || !strings.Contains(got[len(got)-1].Text, "Count: 200") {
			last := ""
			if len(got) > 0 {
				last = got[len(got)-1].Text
			}
			return fmt.Errorf("%d payloads so far, last: %q", len(got), last)
		}
		return nil
	})
	ids := map[string]bool{}
	posts := 0
	for _, p := range s.matching("warnings", "(Unhealthy)") {
		ids[p.ID] = true
		if p.Action == "post" {
			posts++
		}
	}
	require.Len(t, ids, 1, "one grouped message")
	require.Equal(t, 1, posts)
}

// TestRestartReportsNothingOld: objects that exist when the agent starts are not reported.
func TestRestartReportsNothingOld(t *testing.T) {
	ctx := t.Context()
	const ns = "restart"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, env.CreateNamespace(ctx, "kubechat"))
	s := newSink(t)
	a := startAgent(t, alertConfig(s.srv.URL, ns))
	waitReady(t, a)
	for i := range 5 {
		_, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	eventually(t, 20*time.Second, "5 create alerts", func() error {
		if n := len(s.matching("changes", "ConfigMap "+ns+"/cm-")); n != 5 {
			return fmt.Errorf("%d", n)
		}
		return nil
	})
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-a.done)
	b := startAgent(t, alertConfig(s.srv.URL, ns))
	waitReady(t, b)
	_, err := env.Client.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	eventually(t, 20*time.Second, "the new object's alert", func() error {
		if n := len(s.matching("changes", "ConfigMap "+ns+"/after")); n != 1 {
			return fmt.Errorf("%d", n)
		}
		return nil
	})
	require.Len(t, s.matching("changes", "ConfigMap "+ns+"/cm-"), 5, "no alert again for pre-existing objects")
}
