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
	"github.com/kubechat/kubechat/internal/llm/llmtest"
	"github.com/kubechat/kubechat/internal/testenv"
)

func aiConfig(apiURL, llmURL, ns string) string {
	return agentBase(ns) + slackPlatform(apiURL) + `channels:
  - name: alerts
    platform: ops-slack
    bindings:
      sources: [workloads]
      executors: [ask, kubectl]
    identity:
      user: e2e-ai-user
      groups: [e2e-ai-readers]
` + podErrorsSource(ns) + fmt.Sprintf(`executors:
  - name: ask
    type: ai
    settings:
      provider:
        baseURL: %[2]q
        model: e2e-model
        apiKey: ${E2E_AI_KEY}
      privacy:
        sendLogs: true
  - name: kubectl
    type: kubectl
    policy:
      namespaces: [%[1]s]
      defaultNamespace: %[1]s
`, ns, llmURL)
}

// TestAlertAskAI: a crash-looping pod's alert carries "Ask AI"; a click asks
// the model about the pod with the alert as context, the model reads the
// previous container's logs through the channel's kubectl (as its
// identity), and the answer streams into the alert's thread: first shown
// while the model is still writing, then edited into the full answer. The
// value of a Secret that the logs print never reaches the model.
func TestAlertAskAI(t *testing.T) {
	ctx := t.Context()
	const ns = "ai-e2e"
	const secret = "e2e-s3cr3t-value-123"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, env.BindGroupToClusterRole(ctx, "e2e-ai-readers", "view"))
	_, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": secret}}, metav1.CreateOptions{})
	require.NoError(t, err)
	model := llmtest.New(t)
	model.Key = "e2e-ai-key"
	t.Setenv("E2E_AI_KEY", "e2e-ai-key")
	srv := startSlack(t)
	a := startAgent(t, aiConfig(srv.APIURL(), model.BaseURL(), ns))
	waitReady(t, a)
	waitConnected(t, srv, 1)

	_, err = env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("api", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	pod, err := env.WaitForPod(ctx, ns, "app=api", testenv.PodReady)
	require.NoError(t, err)
	require.NoError(t, env.SetPodLogs(ctx, ns, pod.Name, pod.Spec.Containers[0].Name, "",
		"starting api with password "+secret+"\npanic: cannot reach the database\n"))
	hold := make(chan struct{})
	model.Push(
		llmtest.Reply{ToolCalls: []llmtest.Call{{Name: "kubectl_logs", Arguments: fmt.Sprintf(`{"pod":%q,"namespace":%q,"previous":"true"}`, pod.Name, ns)}}},
		llmtest.Reply{Text: "The api container panics: it cannot reach the database. Check the database Service, then:\n" +
			"`kubectl rollout restart deployment/api -n " + ns + "`", Hold: hold},
	)
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, testenv.CrashLoopLabel)
	_, err = env.Client.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)

	alert := waitSlack(t, srv, "alerts", "the crash-loop alert", func(m slacktest.Message) bool {
		return strings.Contains(m.Text, "Pod "+ns+"/"+pod.Name+" is failing (CrashLoopBackOff)")
	})
	_, err = srv.Click(srv.ChannelID("alerts"), alert.TS, "UBOB0001", buttonID(t, alert, "Ask AI"), "")
	require.NoError(t, err)

	draft := waitSlack(t, srv, "alerts", "the answer's draft in the alert's thread", func(m slacktest.Message) bool {
		return m.ThreadTS == alert.TS && strings.Contains(string(m.Blocks), "Looked at: kubectl logs "+pod.Name)
	})
	require.NotContains(t, string(draft.Blocks), "rollout restart", "shown while the model is still writing")
	close(hold)
	answer := waitSlack(t, srv, "alerts", "the full answer, edited into the draft", func(m slacktest.Message) bool {
		return m.TS == draft.TS && strings.Contains(string(m.Blocks), "it cannot reach the database")
	})
	require.Positive(t, answer.Edits, "the draft was edited in place")
	require.Contains(t, string(answer.Blocks), "Run: kubectl rollout restart deployment/api -n "+ns)
	require.Contains(t, string(answer.Blocks), "as e2e-ai-user", "the tool ran as the channel's identity")

	reqs := model.Requests()
	require.Len(t, reqs, 2)
	first := reqs[0].Messages[len(reqs[0].Messages)-1].Text()
	require.Contains(t, first, "Why is Pod "+ns+"/"+pod.Name+" failing?")
	require.Contains(t, first, "Reason: CrashLoopBackOff", "the alert is the context")
	require.Contains(t, reqs[1].Body, "panic: cannot reach the database")
	for _, r := range reqs {
		require.NotContains(t, r.Body, secret, "the Secret's value never reaches the model")
	}
	var top []slacktest.Message
	for _, m := range srv.Messages(srv.ChannelID("alerts")) {
		if m.ThreadTS == "" {
			top = append(top, m)
		}
	}
	require.Len(t, top, 1, "the answer is in the alert's thread")
}
