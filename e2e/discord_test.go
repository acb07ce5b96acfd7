//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/chat/discord/discordtest"
	"github.com/kubechat/kubechat/internal/testenv"
)

// chatChannelConfig binds one channel of platform to the namespace's
// failing workloads and created ConfigMaps, and to kubectl as a viewer.
func chatChannelConfig(platform, channelID, ns string) string {
	return fmt.Sprintf(`channels:
  - name: alerts
    platform: %[1]s
    id: "%[2]s"
    bindings:
      sources: [workloads, changes]
      executors: [kubectl]
    rateLimit:
      perSecond: 20
      burst: 20
    identity:
      user: e2e-chat-user
      groups: [e2e-chat-readers]
sources:
  - name: workloads
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[3]s]
      resources:
        - type: v1/pods
          events: [error]
  - name: changes
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[3]s]
      resources:
        - type: v1/configmaps
          events: [create]
          name: "cm-.*"
executors:
  - name: kubectl
    type: kubectl
    policy:
      namespaces: ["*"]
      defaultNamespace: %[3]s
`, platform, channelID, ns)
}

// TestDiscordAlertsCommandsAndReconnects: a CrashLoopBackOff alert and a
// kubectl command round trip; then the gateway is cut 5 times in a row,
// each time with a command and an alert under way, and none is lost.
func TestDiscordAlertsCommandsAndReconnects(t *testing.T) {
	ctx := t.Context()
	const ns = "discord-e2e"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, env.BindGroupToClusterRole(ctx, "e2e-chat-readers", "view"))
	srv := discordtest.New()
	t.Cleanup(srv.Close)
	t.Setenv("E2E_DISCORD_TOKEN", strings.TrimPrefix(discordtest.Token, "Bot "))
	channel := srv.ChannelID("alerts")
	a := startAgent(t, agentBase(ns)+fmt.Sprintf(`platforms:
  - name: ops-discord
    type: discord
    settings:
      botToken: ${E2E_DISCORD_TOKEN}
      apiURL: %s
`, srv.URL())+chatChannelConfig("ops-discord", channel, ns))
	waitReady(t, a)
	waitOpen(t, "the gateway session", srv.Connected)
	messages := func() []discordtest.Message { return srv.Messages(channel) }
	find := func(what string, ok func(discordtest.Message) bool) discordtest.Message {
		t.Helper()
		return waitItem(t, what, messages, ok)
	}

	_, err := env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("broken", map[string]string{testenv.CrashLoopLabel: "true"}), metav1.CreateOptions{})
	require.NoError(t, err)
	alert := find("the CrashLoopBackOff embed", func(m discordtest.Message) bool {
		return strings.Contains(string(m.Embeds), "is failing (CrashLoopBackOff)")
	})
	require.Contains(t, string(alert.Embeds), "cluster: e2e")
	pod, err := env.WaitForPod(ctx, ns, "app=broken", func(corev1.Pod) bool { return true })
	require.NoError(t, err)
	mention, err := srv.Mention(channel, "400000000000000001", "kubectl get pods")
	require.NoError(t, err)
	reply := find("the command's reply", func(m discordtest.Message) bool {
		return m.Reference == mention && strings.Contains(string(m.Embeds), pod.Name)
	})
	require.Contains(t, string(reply.Components), "Run again")

	// Cut the gateway 5 times; each time a command is sent at once (the
	// gateway replays it on resume) and an alert is raised.
	for i := range 5 {
		before := srv.Connections()
		srv.Drop()
		id, err := srv.Mention(channel, "400000000000000001", "ping")
		require.NoError(t, err)
		_, err = env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%02d", i)}}, metav1.CreateOptions{})
		require.NoError(t, err)
		eventually(t, 30*time.Second, "a reconnect", func() error {
			if srv.Connections() <= before {
				return fmt.Errorf("%d connections", srv.Connections())
			}
			return nil
		})
		find(fmt.Sprintf("pong %d", i), func(m discordtest.Message) bool { return m.Reference == id })
	}
	for i := range 5 {
		find(fmt.Sprintf("alert for cm-%02d", i), func(m discordtest.Message) bool {
			return strings.Contains(string(m.Embeds), fmt.Sprintf("cm-%02d", i))
		})
	}
	t.Logf("%d gateway sessions, %d resumed", srv.Connections(), srv.Resumes())
}
