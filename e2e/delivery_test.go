//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubechat/kubechat/internal/chat/webhook"
	"github.com/kubechat/kubechat/internal/testenv"
)

// fastHA is the ha block of the tests' two-replica agents: a short Lease,
// so that hand-overs take seconds, and the shared button key.
const fastHA = `ha:
  leaderElection: true
  leaseDuration: 4s
  renewDeadline: 3s
  retryPeriod: 1s
  buttonKey: ${KUBECHAT_BUTTON_KEY}
`

func haConfig(base string) string {
	return strings.Replace(base, "log:\n", fastHA+"log:\n", 1)
}

// metric reads one gauge or counter of the agent, summed over its labels.
func metric(t *testing.T, a *agent, name string, labels ...string) float64 {
	t.Helper()
	_, body, err := a.get("/metrics")
	if err != nil {
		return -1
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	total := 0.0
series:
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		for _, l := range labels {
			if !strings.Contains(m[1], l) {
				continue series
			}
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		total += v
	}
	return total
}

// stop sends SIGTERM and waits for a clean exit.
func stop(t *testing.T, a *agent) {
	t.Helper()
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-a.done:
		require.NoError(t, err, "a clean stop exits 0:\n%s", a.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("the agent did not stop within 30 s:\n%s", a.logs())
	}
}

func crashLoop(t *testing.T, ns, name string) {
	t.Helper()
	_, err := env.Client.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubechat.test/crashloop": "true"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

func heal(t *testing.T, ns, name string) {
	t.Helper()
	patch := []byte(`{"metadata":{"labels":{"kubechat.test/crashloop":null}}}`)
	_, err := env.Client.CoreV1().Pods(ns).Patch(t.Context(), name, types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
}

func createCM(t *testing.T, ns, name string) {
	t.Helper()
	_, err := env.Client.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// sentinel creates a ConfigMap and waits for its alert: everything the
// agent was to deliver before it has been delivered by then.
func sentinel(t *testing.T, s *sink, ns, name string) {
	t.Helper()
	createCM(t, ns, name)
	eventually(t, 60*time.Second, "the sentinel "+name, func() error {
		if len(s.matching("changes", "ConfigMap "+ns+"/"+name+" ")) == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
}

// exactlyOnce checks that the alert of every name arrived once: one
// message id, posted once.
func exactlyOnce(t *testing.T, s *sink, channel, prefix string, names []string) {
	t.Helper()
	for _, n := range names {
		posts := 0
		for _, p := range s.matching(channel, prefix+n+" ") {
			if p.Action == "post" {
				posts++
			}
		}
		require.Equal(t, 1, posts, "%s%s: exactly one message", prefix, n)
	}
}

// resolvedOnce checks that each failing pod got one alert and one edit of
// that same message into a resolution.
func resolvedOnce(t *testing.T, s *sink, ns string, pods []string) {
	t.Helper()
	for _, pod := range pods {
		var ids []string
		var edits []webhook.Payload
		for _, p := range s.all() {
			if p.Channel != "transitions" || !strings.Contains(p.Title, "Pod "+ns+"/"+pod+" ") {
				continue
			}
			if p.Action == "post" {
				ids = append(ids, p.ID)
			} else {
				edits = append(edits, p)
			}
		}
		require.Len(t, ids, 1, "%s: one alert", pod)
		require.Len(t, edits, 1, "%s: one resolution", pod)
		require.Equal(t, ids[0], edits[0].ID, "%s: the resolution edits the alert", pod)
		require.Contains(t, edits[0].Title, "Resolved")
	}
}

// TestStopWithChatDownLosesNothing: with the chat down and alerts queued,
// a SIGTERM keeps them in the outbox; the pods recover while the agent is
// away; started again with the chat up, every alert and every resolution
// arrives exactly once.
func TestStopWithChatDownLosesNothing(t *testing.T) {
	const ns = "outbox"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	s := newSink(t)
	cfg := alertConfig(s.srv.URL, ns)
	a := startAgent(t, cfg)
	waitReady(t, a)
	s.setMode("down", 0)
	var cms, pods []string
	for i := range 15 {
		cms = append(cms, fmt.Sprintf("cm-%d", i))
		createCM(t, ns, cms[i])
	}
	for i := range 5 {
		pods = append(pods, fmt.Sprintf("crash-%d", i))
		crashLoop(t, ns, pods[i])
	}
	// Every change and every failing pod is queued before the stop: a pod
	// that heals before the agent saw it fail has nothing to resolve.
	eventually(t, 60*time.Second, "20 messages queued", func() error {
		changes := metric(t, a, "kubechat_queue_depth", `channel="changes"`)
		failing := metric(t, a, "kubechat_queue_depth", `channel="transitions"`)
		if changes < 15 || failing < 5 {
			return fmt.Errorf("%v changes and %v failing pods queued", changes, failing)
		}
		if n := metric(t, a, "kubechat_outbox_pending"); n < 20 {
			return fmt.Errorf("%v in the outbox", n)
		}
		return nil
	})
	stop(t, a)
	require.NotContains(t, a.logs(), "dead-lettered")
	for _, p := range pods {
		heal(t, ns, p)
	}
	for _, p := range pods {
		_, err := env.WaitForPod(t.Context(), ns, "", func(pod corev1.Pod) bool { return pod.Name == p && testenv.PodReady(pod) })
		require.NoError(t, err)
	}
	s.setMode("up", 0)
	a = startAgent(t, cfg)
	waitLog(t, a, "delivering messages queued before the restart")
	eventually(t, 60*time.Second, "the five resolutions", func() error {
		n := 0
		for _, p := range s.all() {
			if p.Action == "update" && strings.Contains(p.Title, "Resolved") {
				n++
			}
		}
		if n < 5 {
			return fmt.Errorf("%d resolutions", n)
		}
		return nil
	})
	sentinel(t, s, ns, "after")
	exactlyOnce(t, s, "changes", "ConfigMap "+ns+"/", cms)
	resolvedOnce(t, s, ns, pods)
}

// waitLog waits until the agent logged line.
func waitLog(t *testing.T, a *agent, line string) {
	t.Helper()
	eventually(t, 60*time.Second, "log "+line, func() error {
		if !strings.Contains(a.logs(), line) {
			return fmt.Errorf("not logged")
		}
		return nil
	})
}

// TestHandOversDeliverExactlyOnce: alerts keep coming while the leader is
// stopped gracefully, then killed five times; each time the other replica
// takes over within the Lease time, and every alert arrives exactly once.
func TestHandOversDeliverExactlyOnce(t *testing.T) {
	const ns = "handover"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	t.Setenv("KUBECHAT_BUTTON_KEY", "e2e-button-key-0123456789abcdef")
	s := newSink(t)
	cfg := haConfig(alertConfig(s.srv.URL, ns))
	leads := func(a *agent) bool { return strings.Contains(a.logs(), "became the leader") }
	agents := []*agent{startAgent(t, cfg)}
	eventually(t, 30*time.Second, "a leader", func() error {
		if !leads(agents[0]) {
			return fmt.Errorf("none")
		}
		return nil
	})
	agents = append(agents, startAgent(t, cfg))
	var names []string
	next := 0
	burst := func(n int) {
		for range n {
			name := fmt.Sprintf("cm-%d", next)
			next++
			names = append(names, name)
			createCM(t, ns, name)
			time.Sleep(150 * time.Millisecond)
		}
	}
	burst(10)
	for round := range 6 {
		leader := agents[0]
		if !leads(leader) {
			leader = agents[1]
		}
		standby := agents[0]
		if standby == leader {
			standby = agents[1]
		}
		start := time.Now()
		if round == 0 {
			require.NoError(t, leader.cmd.Process.Signal(syscall.SIGTERM))
		} else {
			require.NoError(t, leader.cmd.Process.Signal(syscall.SIGKILL))
		}
		burst(8) // while the leader goes
		eventually(t, 30*time.Second, "the standby takes over", func() error {
			if !leads(standby) {
				return fmt.Errorf("still standing by")
			}
			return nil
		})
		t.Logf("round %d: the standby led %s after the leader was %s", round, time.Since(start).Round(100*time.Millisecond),
			map[bool]string{true: "stopped", false: "killed"}[round == 0])
		agents = []*agent{standby, startAgent(t, cfg)}
		burst(4)
	}
	sentinel(t, s, ns, "last")
	exactlyOnce(t, s, "changes", "ConfigMap "+ns+"/", names)
	s.mu.Lock()
	t.Logf("%d alerts, %d repeated requests dropped by the receiver's Idempotency-Key", len(names), s.repeats)
	s.mu.Unlock()
}

// TestSlowReceiverKeepsOneID: a receiver that holds every request for 20 s
// (longer than an attempt may take) gets the same id on every attempt, and
// the resolution edits that message.
func TestSlowReceiverKeepsOneID(t *testing.T) {
	const ns = "slow"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	s := newSink(t)
	a := startAgent(t, alertConfig(s.srv.URL, ns))
	waitReady(t, a)
	s.setMode("hang", 20*time.Second)
	crashLoop(t, ns, "web")
	eventually(t, 90*time.Second, "the alert, delivered through the timeouts", func() error {
		if len(s.matching("transitions", "Pod "+ns+"/web ")) == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	s.setMode("up", 0)
	heal(t, ns, "web")
	eventually(t, 60*time.Second, "the resolution", func() error {
		for _, p := range s.matching("transitions", "Pod "+ns+"/web ") {
			if p.Action == "update" {
				return nil
			}
		}
		return fmt.Errorf("not yet")
	})
	resolvedOnce(t, s, ns, []string{"web"})
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Positive(t, s.repeats, "the slow attempts were retried with the same Idempotency-Key")
}

// TestUpdatesArriveInOrder: two updates of one object in quick succession
// are alerted in order, 100 times over.
func TestUpdatesArriveInOrder(t *testing.T) {
	const ns = "order"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	s := newSink(t)
	cfg := agentBase(ns) + fmt.Sprintf(`platforms:
  - name: sink
    type: webhook
    settings:
      url: %s
channels:
  - name: changes
    platform: sink
    bindings:
      sources: [changes]
    rateLimit: {perSecond: 1000, burst: 1000}
sources:
  - name: changes
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%s]
      resources:
        - type: v1/configmaps
          events: [update]
          fields: [data.step]
`, s.srv.URL, ns)
	a := startAgent(t, cfg)
	waitReady(t, a)
	const n = 100
	for i := range n {
		name := fmt.Sprintf("cm-%d", i)
		_, err := env.Client.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name},
			Data: map[string]string{"step": "0"}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	for i := range n {
		name := fmt.Sprintf("cm-%d", i)
		for _, step := range []string{"1", "2"} {
			patch := []byte(`{"data":{"step":"` + step + `"}}`)
			_, err := env.Client.CoreV1().ConfigMaps(ns).Patch(t.Context(), name, types.MergePatchType, patch, metav1.PatchOptions{})
			require.NoError(t, err)
		}
	}
	eventually(t, 60*time.Second, "all updates", func() error {
		if got := len(s.matching("changes", "ConfigMap "+ns+"/")); got < 2*n {
			return fmt.Errorf("%d of %d", got, 2*n)
		}
		return nil
	})
	for i := range n {
		var steps []string
		for _, p := range s.matching("changes", fmt.Sprintf("ConfigMap %s/cm-%d ", ns, i)) {
			steps = append(steps, p.Text)
		}
		require.Len(t, steps, 2, "cm-%d", i)
		require.Contains(t, steps[0], `"0" → "1"`, "cm-%d: first update first", i)
		require.Contains(t, steps[1], `"1" → "2"`, "cm-%d", i)
	}
}
