//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
)

// TestLeaderHandOver: with two agents, only the leader alerts; when it is
// killed, the standby takes over within 15 s and every change, including
// those made while nobody led, is alerted exactly once.
func TestLeaderHandOver(t *testing.T) {
	ctx := t.Context()
	const ns = "ha"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	s := newSink(t)
	cfg := strings.Replace(alertConfig(s.srv.URL, ns), "log:\n", "ha:\n  leaderElection: true\nlog:\n", 1)
	create := func(from, to int) {
		for i := from; i <= to; i++ {
			_, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}}, metav1.CreateOptions{})
			require.NoError(t, err)
		}
	}
	leads := func(a *agent) bool { return strings.Contains(a.logs(), "became the leader") }

	first := startAgent(t, cfg)
	eventually(t, 20*time.Second, "a leader", func() error {
		if !leads(first) {
			return fmt.Errorf("not leading yet")
		}
		return nil
	})
	second := startAgent(t, cfg)
	waitReady(t, second)
	require.False(t, leads(second), "one leader at a time")

	create(1, 3)
	eventually(t, 20*time.Second, "alerts from the leader", func() error {
		if n := len(s.matching("changes", "ConfigMap "+ns+"/cm-")); n != 3 {
			return fmt.Errorf("%d alerts", n)
		}
		return nil
	})
	time.Sleep(7 * time.Second) // past a checkpoint
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	create(4, 6) // nobody leads now

	// The Lease (10 s) expires, then the standby's next retry (2 s) takes
	// it: about 12 s. The bound leaves room for a loaded machine; the
	// figure is logged, not asserted.
	eventually(t, 60*time.Second, "the standby takes over", func() error {
		if !leads(second) {
			return fmt.Errorf("standby still waiting")
		}
		return nil
	})
	takeover := time.Since(killed)
	t.Logf("standby took over %s after the leader was killed", takeover.Round(100*time.Millisecond))
	create(7, 9)

	eventually(t, 30*time.Second, "all nine changes alerted", func() error {
		if n := len(s.matching("changes", "ConfigMap "+ns+"/cm-")); n < 9 {
			return fmt.Errorf("%d alerts", n)
		}
		return nil
	})
	sentinel(t, s, ns, "last") // everything queued before it was delivered
	for i := 1; i <= 9; i++ {
		require.Len(t, s.matching("changes", fmt.Sprintf("ConfigMap %s/cm-%d created", ns, i)), 1, "cm-%d exactly once", i)
	}
}

// TestOnlyTheLeaderListensToSlack: Slack hands each Socket Mode event to
// one of an app's connections. Only the leader connects, so a command and a
// click on a button it issued reach the agent that holds the button; after
// a hand-over the new leader connects and answers.
func TestOnlyTheLeaderListensToSlack(t *testing.T) {
	ctx := t.Context()
	const ns = "ha-slack"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, env.BindGroupToClusterRole(ctx, "e2e-slack-readers", "view"))
	srv := startSlack(t)
	cfg := strings.Replace(slackConfig(srv.APIURL(), ns), "log:\n", "ha:\n  leaderElection: true\nlog:\n", 1)
	leads := func(a *agent) bool { return strings.Contains(a.logs(), "became the leader") }

	first := startAgent(t, cfg)
	eventually(t, 20*time.Second, "a leader", func() error {
		if !leads(first) {
			return fmt.Errorf("not leading yet")
		}
		return nil
	})
	waitConnected(t, srv, 1)
	second := startAgent(t, cfg)
	waitReady(t, second)
	require.False(t, leads(second), "one leader at a time")

	general := srv.ChannelID("general")
	ts, _, err := srv.Mention(general, "UALICE01", "kubectl get configmaps")
	require.NoError(t, err)
	reply := waitSlack(t, srv, "general", "the command's reply", func(m slacktest.Message) bool {
		return m.ThreadTS == ts && strings.Contains(string(m.Blocks), "kube-root-ca.crt")
	})
	// The fake, like Slack, would hand the click to the newest connection:
	// the standby's, had it connected.
	_, err = srv.Click(general, reply.TS, "UBOB0001", buttonID(t, reply, "Run again"), "")
	require.NoError(t, err)
	waitSlack(t, srv, "general", "the re-run", func(m slacktest.Message) bool {
		return m.TS != reply.TS && m.ThreadTS == ts && strings.Contains(string(m.Blocks), "kube-root-ca.crt")
	})
	require.Equal(t, 1, srv.Connections(), "the standby never connected")

	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	eventually(t, 60*time.Second, "the standby takes over", func() error {
		if !leads(second) {
			return fmt.Errorf("standby still waiting")
		}
		return nil
	})
	waitConnected(t, srv, 2)
	pingTS, _, err := srv.Mention(general, "UALICE01", "ping")
	require.NoError(t, err)
	waitSlack(t, srv, "general", "pong from the new leader", func(m slacktest.Message) bool { return m.ThreadTS == pingTS })
}
