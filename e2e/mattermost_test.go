//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/chat/mattermost/mattermosttest"
	"github.com/kubechat/kubechat/internal/testenv"
)

// TestMattermostAlertsCommandsAndReconnects: a CrashLoopBackOff alert and a
// kubectl command round trip, a Run again click through the integration
// endpoint; then the websocket is cut 5 times in a row, with an alert
// raised each time, and no alert or command is lost.
func TestMattermostAlertsCommandsAndReconnects(t *testing.T) {
	ctx := t.Context()
	const ns = "mattermost-e2e"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, env.BindGroupToClusterRole(ctx, "e2e-chat-readers", "view"))
	srv := mattermosttest.New()
	t.Cleanup(srv.Close)
	t.Setenv("E2E_MATTERMOST_TOKEN", mattermosttest.Token)
	channel := srv.ChannelID("alerts")
	config := func(actionsURL string) string {
		return agentBase(ns) + fmt.Sprintf(`platforms:
  - name: ops-mattermost
    type: mattermost
    settings:
      url: %s
      token: ${E2E_MATTERMOST_TOKEN}
      team: %s
      actionsURL: %s
`, srv.URL(), mattermosttest.TeamName, actionsURL) + chatChannelConfig("ops-mattermost", "alerts", ns)
	}
	// Mattermost posts clicks to an absolute URL, so the agent gets a known port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	a := startAgent(t, strings.Replace(config("http://"+addr+"/hooks/ops-mattermost/actions"), "listen: 127.0.0.1:0", "listen: "+addr, 1))
	waitReady(t, a)
	waitOpen(t, "the websocket", srv.Connected)
	posts := func() []mattermosttest.Post { return srv.Posts(channel) }
	find := func(what string, ok func(mattermosttest.Post) bool) mattermosttest.Post {
		t.Helper()
		return waitItem(t, what, posts, ok)
	}

	_, err = env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("broken", map[string]string{testenv.CrashLoopLabel: "true"}), metav1.CreateOptions{})
	require.NoError(t, err)
	alert := find("the CrashLoopBackOff attachment", func(p mattermosttest.Post) bool {
		return strings.Contains(string(p.Props), "is failing (CrashLoopBackOff)")
	})
	require.Contains(t, string(alert.Props), "cluster: e2e")
	pod, err := env.WaitForPod(ctx, ns, "app=broken", func(corev1.Pod) bool { return true })
	require.NoError(t, err)
	mention, err := srv.Mention(channel, "aliceuserid000000000000001", "kubectl get pods")
	require.NoError(t, err)
	reply := find("the command's reply", func(p mattermosttest.Post) bool {
		return p.RootID == mention && strings.Contains(string(p.Props), pod.Name)
	})
	status, body, err := srv.Click(reply.ID, "aliceuserid000000000000001", "kc0", "")
	require.NoError(t, err)
	require.Equal(t, 200, status, string(body))
	eventually(t, 30*time.Second, "the re-run", func() error {
		n := 0
		for _, p := range srv.Posts(channel) {
			if p.RootID == mention && strings.Contains(string(p.Props), pod.Name) {
				n++
			}
		}
		if n < 2 {
			return fmt.Errorf("%d results", n)
		}
		return nil
	})

	for i := range 5 {
		before := srv.Connections()
		srv.Drop()
		_, err = env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%02d", i)}}, metav1.CreateOptions{})
		require.NoError(t, err)
		eventually(t, 30*time.Second, "a reconnect", func() error {
			if srv.Connections() <= before || srv.Connected() == 0 {
				return fmt.Errorf("%d connections", srv.Connections())
			}
			return nil
		})
		id, err := srv.Mention(channel, "aliceuserid000000000000001", "ping")
		require.NoError(t, err)
		find(fmt.Sprintf("pong %d", i), func(p mattermosttest.Post) bool { return p.RootID == id })
	}
	for i := range 5 {
		find(fmt.Sprintf("alert for cm-%02d", i), func(p mattermosttest.Post) bool {
			return strings.Contains(string(p.Props), fmt.Sprintf("cm-%02d", i))
		})
	}
}
