//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/github/githubtest"
	"github.com/kubechat/kubechat/internal/testenv"
)

func issueConfig(apiURL, githubURL, ns string) string {
	return agentBase(ns) + slackPlatform(apiURL) + `channels:
  - name: alerts
    platform: ops-slack
    bindings:
      sources: [workloads]
      executors: [issues]
    identity:
      user: e2e-issue-user
      groups: [e2e-issue-readers]
` + podErrorsSource(ns) + fmt.Sprintf(`executors:
  - name: issues
    type: github
    settings:
      repository: acme/ops
      labels: [kubechat]
      api:
        baseURL: %[2]s
        token: ${E2E_ISSUES_TOKEN}
    policy:
      verbs: [issue create]
      namespaces: [%[1]s]
      defaultNamespace: %[1]s
`, ns, githubURL)
}

// TestAlertOpenIssue: a crash-looping pod's alert carries "Open issue"; a
// click opens one issue on the fake GitHub with describe and the previous
// run's logs, the Secret value the logs print masked, and the reply with
// the issue's link goes into the alert's thread; a typed command about the
// same pod returns the same issue.
func TestAlertOpenIssue(t *testing.T) {
	ctx := t.Context()
	const ns = "issue-e2e"
	const secret = "e2e-issue-s3cr3t-42"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, env.BindGroupToClusterRole(ctx, "e2e-issue-readers", "view"))
	_, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": secret}}, metav1.CreateOptions{})
	require.NoError(t, err)
	gh := githubtest.New(t, "e2e-issues-token")
	t.Setenv("E2E_ISSUES_TOKEN", "e2e-issues-token")
	srv := startSlack(t)
	a := startAgent(t, issueConfig(srv.APIURL(), gh.APIURL(), ns))
	waitReady(t, a)
	waitConnected(t, srv, 1)

	_, err = env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("api", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	pod, err := env.WaitForPod(ctx, ns, "app=api", testenv.PodReady)
	require.NoError(t, err)
	require.NoError(t, env.SetPodLogs(ctx, ns, pod.Name, pod.Spec.Containers[0].Name, "",
		"starting api with password "+secret+"\npanic: cannot reach the database\n"))
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, testenv.CrashLoopLabel)
	_, err = env.Client.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)

	alert := waitSlack(t, srv, "alerts", "the crash-loop alert", func(m slacktest.Message) bool {
		return strings.Contains(m.Text, "Pod "+ns+"/"+pod.Name+" is failing (CrashLoopBackOff)")
	})
	_, err = srv.Click(srv.ChannelID("alerts"), alert.TS, "UBOB0001", buttonID(t, alert, "Open issue"), "")
	require.NoError(t, err)
	reply := waitSlack(t, srv, "alerts", "the issue's link in the alert's thread", func(m slacktest.Message) bool {
		return m.ThreadTS == alert.TS && strings.Contains(string(m.Blocks), "Opened issue #1 in acme/ops")
	})
	url := gh.URL + "/acme/ops/issues/1"
	require.Contains(t, string(reply.Blocks), url)
	issues := gh.Issues()
	require.Len(t, issues, 1)
	body := issues[0].Body
	require.Equal(t, "[e2e] Pod "+ns+"/"+pod.Name+" is failing (CrashLoopBackOff)", issues[0].Title)
	require.Contains(t, body, "## kubectl describe")
	require.Contains(t, body, "CrashLoopBackOff")
	require.Contains(t, body, "panic: cannot reach the database")
	require.Contains(t, body, "starting api with password ***")
	require.NotContains(t, body+string(reply.Blocks), secret, "the Secret's value never reaches GitHub or the chat")

	_, _, err = srv.Mention(srv.ChannelID("alerts"), "UBOB0001", "github issue create pod/"+pod.Name)
	require.NoError(t, err)
	again := waitSlack(t, srv, "alerts", "the typed command's reply", func(m slacktest.Message) bool {
		return strings.Contains(string(m.Blocks), "is already open: #1 in acme/ops")
	})
	require.Contains(t, string(again.Blocks), url)
	require.Len(t, gh.Issues(), 1, "one issue for the pod")
}
