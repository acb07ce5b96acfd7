//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/testenv"
)

// startSlack starts a fake Slack workspace; the agent reads its tokens
// from the environment, as in production.
func startSlack(t *testing.T) *slacktest.Server {
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	t.Setenv("E2E_SLACK_BOT_TOKEN", slacktest.BotToken)
	t.Setenv("E2E_SLACK_APP_TOKEN", slacktest.AppToken)
	return srv
}

// slackPlatform is the platforms block of an agent that talks to the fake
// Slack at apiURL, with the tokens startSlack puts in the environment.
func slackPlatform(apiURL string) string {
	return fmt.Sprintf(`platforms:
  - name: ops-slack
    type: slack
    settings:
      botToken: ${E2E_SLACK_BOT_TOKEN}
      appToken: ${E2E_SLACK_APP_TOKEN}
      apiURL: %s
`, apiURL)
}

func slackConfig(apiURL, ns string) string {
	return agentBase(ns) + slackPlatform(apiURL) + fmt.Sprintf(`channels:
  - name: alerts
    platform: ops-slack
    bindings:
      sources: [workloads, changes]
    rateLimit:
      perSecond: 20
      burst: 20
  - name: general
    platform: ops-slack
    bindings:
      executors: [kubectl]
    identity:
      user: e2e-slack-user
      groups: [e2e-slack-readers]
sources:
  - name: workloads
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[1]s]
      resources:
        - type: v1/pods
          events: [error]
  - name: changes
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[1]s]
      resources:
        - type: v1/configmaps
          events: [create]
          name: "cm-.*"
executors:
  - name: kubectl
    type: kubectl
    policy:
      namespaces: ["*"]
      defaultNamespace: %[1]s
`, ns)
}

// waitConnected waits until the agent has opened total Socket Mode connections and one is open.
func waitConnected(t *testing.T, srv *slacktest.Server, total int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, srv.WaitConnected(ctx, total), "socket mode connection")
}

// waitSlack waits until channel holds a message that satisfies ok, and returns it.
func waitSlack(t *testing.T, srv *slacktest.Server, channel, what string, ok func(slacktest.Message) bool) slacktest.Message {
	t.Helper()
	return waitItem(t, what, func() []slacktest.Message { return srv.Messages(srv.ChannelID(channel)) }, ok)
}

// buttonID returns the action id of the button labelled label in m's blocks.
func buttonID(t *testing.T, m slacktest.Message, label string) string {
	t.Helper()
	var blocks []struct {
		Type     string           `json:"type"`
		Elements []map[string]any `json:"elements"`
	}
	require.NoError(t, json.Unmarshal(m.Blocks, &blocks))
	for _, b := range blocks {
		for _, e := range b.Elements {
			text, _ := e["text"].(map[string]any)
			if b.Type == "actions" && e["type"] == "button" && text["text"] == label {
				id, _ := e["action_id"].(string)
				return id
			}
		}
	}
	t.Fatalf("no %q button in %s", label, m.Blocks)
	return ""
}

// TestSlackAlertsCommandsAndButtons: a crash-looping pod becomes a Block
// Kit alert; a mention runs kubectl and answers in its thread with a Run
// again button; the button works once, a replayed click and a click from
// before a restart are refused with a clear message; a cut websocket
// reconnects within 30 s.
func TestSlackAlertsCommandsAndButtons(t *testing.T) {
	ctx := t.Context()
	const ns = "slack-e2e"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, env.BindGroupToClusterRole(ctx, "e2e-slack-readers", "view"))
	srv := startSlack(t)
	cfg := slackConfig(srv.APIURL(), ns)
	a := startAgent(t, cfg)
	waitReady(t, a)
	waitConnected(t, srv, 1)

	// The alert: header, fields, code-free context line with the cluster.
	_, err := env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("broken", map[string]string{testenv.CrashLoopLabel: "true"}), metav1.CreateOptions{})
	require.NoError(t, err)
	alert := waitSlack(t, srv, "alerts", "a Block Kit alert", func(m slacktest.Message) bool {
		return strings.Contains(m.Text, "is failing (CrashLoopBackOff)")
	})
	blocks := string(alert.Blocks)
	require.Contains(t, blocks, `"type":"header"`)
	require.Contains(t, blocks, `CrashLoopBackOff`)
	require.Contains(t, blocks, `"fields":[`)
	require.Contains(t, blocks, `*Namespace*\n`+ns)
	require.Regexp(t, `"type":"context".*cluster: e2e`, blocks)

	// A command in the channel, answered in its thread.
	pod, err := env.WaitForPod(ctx, ns, "app=broken", func(corev1.Pod) bool { return true })
	require.NoError(t, err)
	general := srv.ChannelID("general")
	ts, _, err := srv.Mention(general, "UALICE01", "kubectl get pods")
	require.NoError(t, err)
	reply := waitSlack(t, srv, "general", "the command's reply", func(m slacktest.Message) bool {
		return m.ThreadTS == ts && strings.Contains(string(m.Blocks), pod.Name)
	})
	runAgain := buttonID(t, reply, "Run again")
	require.NotContains(t, runAgain, "kubectl", "a button carries only an opaque id")

	// The button runs the command again, once.
	_, err = srv.Click(general, reply.TS, "UBOB0001", runAgain, "")
	require.NoError(t, err)
	again := waitSlack(t, srv, "general", "the re-run", func(m slacktest.Message) bool {
		return m.TS != reply.TS && m.ThreadTS == ts && strings.Contains(string(m.Blocks), pod.Name)
	})
	_, err = srv.Click(general, reply.TS, "UBOB0001", runAgain, "")
	require.NoError(t, err)
	waitSlack(t, srv, "general", "the replayed click refused", func(m slacktest.Message) bool {
		return m.ThreadTS == ts && strings.Contains(string(m.Blocks), "this button was already used")
	})

	// A cut websocket comes back within 30 s, and works.
	before := srv.Connections()
	cut := time.Now()
	srv.Drop()
	eventually(t, 30*time.Second, "a reconnect", func() error {
		if srv.Connections() <= before || srv.Connected() == 0 {
			return fmt.Errorf("%d connections, %d open", srv.Connections(), srv.Connected())
		}
		return nil
	})
	t.Logf("reconnected %s after the cut", time.Since(cut).Round(time.Millisecond))
	pingTS, _, err := srv.Mention(general, "UALICE01", "ping")
	require.NoError(t, err)
	waitSlack(t, srv, "general", "pong after the reconnect", func(m slacktest.Message) bool { return m.ThreadTS == pingTS })

	// A button from before a restart is stale.
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-a.done)
	connections := srv.Connections()
	a = startAgent(t, cfg)
	waitReady(t, a)
	waitConnected(t, srv, connections+1)
	_, err = srv.Click(general, again.TS, "UBOB0001", buttonID(t, again, "Run again"), "")
	require.NoError(t, err)
	waitSlack(t, srv, "general", "the stale click refused", func(m slacktest.Message) bool {
		return m.ThreadTS == ts && strings.Contains(string(m.Blocks), "from before the agent restarted")
	})
}

var configMapNumber = regexp.MustCompile(`cm-(\d\d)`)

// titles returns the configmap numbers of the change alerts in #alerts, in order.
func changeAlerts(srv *slacktest.Server) []string {
	var out []string
	for _, m := range srv.Messages(srv.ChannelID("alerts")) {
		if n := configMapNumber.FindStringSubmatch(m.Text); n != nil {
			out = append(out, n[1])
		}
	}
	return out
}

func createConfigMaps(ctx context.Context, t *testing.T, ns string, from, to int, gap time.Duration) []string {
	var names []string
	for i := from; i < to; i++ {
		_, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%02d", i)}}, metav1.CreateOptions{})
		require.NoError(t, err)
		names = append(names, fmt.Sprintf("%02d", i))
		time.Sleep(gap)
	}
	return names
}

// TestSlackDeliverySurvivesRateLimitsAndOutage: a storm of 10 × 429
// (Retry-After 1 s) and then a 2-minute 5xx outage of the Slack API both
// end with every alert delivered exactly once, in order.
func TestSlackDeliverySurvivesRateLimitsAndOutage(t *testing.T) {
	ctx := t.Context()
	const ns = "slack-outage"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	srv := startSlack(t)
	// Readiness shows an outage after 5 s; liveness never does.
	a := startAgent(t, strings.Replace(slackConfig(srv.APIURL(), ns), "http:\n", "http:\n  unhealthyAfter: 5s\n", 1))
	waitReady(t, a)
	waitConnected(t, srv, 1)

	posts := srv.Calls("chat.postMessage")
	srv.FailNext(10, 429, time.Second)
	want := createConfigMaps(ctx, t, ns, 0, 5, 0)
	eventually(t, 60*time.Second, "5 alerts through the 429 storm", func() error {
		if got := changeAlerts(srv); len(got) < len(want) {
			return fmt.Errorf("%d of %d alerts", len(got), len(want))
		}
		return nil
	})
	require.Equal(t, want, changeAlerts(srv), "each alert once, in order")
	require.GreaterOrEqual(t, srv.Calls("chat.postMessage")-posts, 15, "the 429s were answered by retries")

	const outage = 2 * time.Minute
	srv.SetDown(true)
	down := time.Now()
	want = append(want, createConfigMaps(ctx, t, ns, 5, 10, 3*time.Second)...)
	eventually(t, 60*time.Second, "readiness and metrics show the outage", func() error {
		code, body, err := a.get("/readyz")
		switch {
		case err != nil:
			return err
		case code == http.StatusOK:
			return fmt.Errorf("still ready")
		case !strings.Contains(body, "delivery/ops-slack"):
			return fmt.Errorf("not ready, but not for Slack: %s", body)
		case metric(t, a, "kubechat_platform_up") != 0:
			return fmt.Errorf("kubechat_platform_up is not 0")
		}
		return nil
	})
	for time.Since(down) < outage {
		code, body, err := a.get("/healthz")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, "liveness stays up through a chat outage: %s", body)
		require.Positive(t, metric(t, a, "kubechat_queue_depth"), "the backlog waits in the queue")
		time.Sleep(2 * time.Second)
	}
	require.Len(t, changeAlerts(srv), 5, "nothing gets through an outage")
	srv.SetDown(false)
	eventually(t, 90*time.Second, "10 alerts after the outage", func() error {
		if got := changeAlerts(srv); len(got) < len(want) {
			return fmt.Errorf("%d of %d alerts", len(got), len(want))
		}
		return nil
	})
	t.Logf("all delivered %s after the outage ended", time.Since(down.Add(outage)).Round(time.Second))
	waitReady(t, a)
	// Barrier: a last change's alert comes after any repeat of the others.
	want = append(want, createConfigMaps(ctx, t, ns, 10, 11, 0)...)
	eventually(t, 60*time.Second, "the last alert", func() error {
		if got := changeAlerts(srv); len(got) == 0 || got[len(got)-1] != want[len(want)-1] {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	require.Equal(t, want, changeAlerts(srv), "each alert once, in order")

	// The queue counts a delivery once the platform has answered.
	eventually(t, 10*time.Second, "11 deliveries counted", func() error {
		_, metrics, err := a.get("/metrics")
		if err != nil || !strings.Contains(metrics, `kubechat_notifications_total{channel="alerts",platform="ops-slack",result="delivered"} 11`) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	_, metrics, err := a.get("/metrics")
	require.NoError(t, err)
	require.NotContains(t, metrics, `result="dead_letter"`)
}
