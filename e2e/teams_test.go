//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/chat/teams/teamstest"
	"github.com/kubechat/kubechat/internal/testenv"
)

func teamsConfig(srv *teamstest.Server, ns string) string {
	// The fallback serviceURL is unreachable: alerts can only arrive through
	// the conversation reference the agent captured and persisted.
	return agentBase(ns) + fmt.Sprintf(`platforms:
  - name: ops-teams
    type: teams
    settings:
      appID: %[1]s
      appPassword: ${E2E_TEAMS_PASSWORD}
      serviceURL: https://unreachable.invalid/
      openIDURL: %[2]s
      tokenURL: %[3]s
channels:
  - name: alerts
    platform: ops-teams
    id: "%[4]s"
    bindings:
      sources: [workloads]
      executors: [kubectl]
    identity:
      user: e2e-teams-user
      groups: [e2e-teams-readers]
sources:
  - name: workloads
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[5]s]
      resources:
        - type: v1/pods
          events: [error]
executors:
  - name: kubectl
    type: kubectl
    policy:
      namespaces: ["*"]
      defaultNamespace: %[5]s
`, teamstest.AppID, srv.OpenIDURL(), srv.TokenURL(), srv.ChannelID("alerts"), ns)
}

// waitTeams waits until the channel holds an activity whose text or card contains want.
func waitTeams(t *testing.T, srv *teamstest.Server, channel, want string) teamstest.Activity {
	t.Helper()
	return waitItem(t, want, func() []teamstest.Activity { return srv.Activities(channel) }, func(a teamstest.Activity) bool {
		return strings.Contains(a.Text+string(a.Attachments), want)
	})
}

// TestTeamsCommandsAndAlertsAfterRestart: a mention runs kubectl get pods
// and is answered with an Adaptive Card in its thread; after a restart, a
// crash-looping pod's alert reaches the channel through the persisted
// conversation reference.
func TestTeamsCommandsAndAlertsAfterRestart(t *testing.T) {
	ctx := t.Context()
	const ns = "teams-e2e"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, env.BindGroupToClusterRole(ctx, "e2e-teams-readers", "view"))
	_, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	srv := teamstest.New()
	t.Cleanup(srv.Close)
	t.Setenv("E2E_TEAMS_PASSWORD", teamstest.AppPassword)
	cfg := teamsConfig(srv, ns)
	a := startAgent(t, cfg)
	waitReady(t, a)
	srv.SetBotEndpoint("http://" + a.addr + "/teams/ops-teams/api/messages")
	channel := srv.ChannelID("alerts")

	var mention string
	eventually(t, 30*time.Second, "the bot accepts activities", func() error {
		id, status, err := srv.Mention(channel, "UALICE01", "kubectl get pods")
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("status %d", status)
		}
		mention = id
		return err
	})
	reply := waitTeams(t, srv, channel, "web-0")
	require.Equal(t, mention, reply.ThreadRoot, "the reply is in the mention's thread")
	require.Contains(t, string(reply.Attachments), "application/vnd.microsoft.card.adaptive")
	require.Contains(t, string(reply.Attachments), "Action.Execute", "with a Run again button")

	// Unsigned requests are refused by the real binary too.
	status, err := srv.Post([]byte(`{"type":"message","text":"kubectl get pods"}`), "")
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, status)

	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-a.done)
	a = startAgent(t, cfg)
	waitReady(t, a)
	_, err = env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("broken", map[string]string{testenv.CrashLoopLabel: "true"}), metav1.CreateOptions{})
	require.NoError(t, err)
	alert := waitTeams(t, srv, channel, "is failing (CrashLoopBackOff)")
	require.Empty(t, alert.ThreadRoot, "an alert is a new post")
}
