//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/testenv"
)

// podErrorsSource is a source "workloads" of the pods of ns that fail.
func podErrorsSource(ns string) string {
	return fmt.Sprintf(`sources:
  - name: workloads
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%s]
      resources:
        - type: v1/pods
          events: [error]
`, ns)
}

func actionsConfig(apiURL, ns string) string {
	return agentBase(ns) + slackPlatform(apiURL) + `channels:
  - name: alerts
    platform: ops-slack
    bindings:
      sources: [workloads]
      executors: [kubectl]
      actions: [crash-logs, crash-describe]
    identity:
      user: e2e-actions-user
      groups: [e2e-actions-readers]
` + podErrorsSource(ns) + fmt.Sprintf(`executors:
  - name: kubectl
    type: kubectl
    policy:
      namespaces: [%[1]s]
      defaultNamespace: %[1]s
actions:
  - name: crash-logs
    source: workloads
    reasons: [CrashLoopBackOff]
    command: kubectl logs {name} -n {namespace} --previous --tail 50
  - name: crash-describe
    source: workloads
    reasons: [CrashLoopBackOff]
    command: kubectl describe pod {name} -n {namespace}
`, ns)
}

// TestCrashLoopAlertCarriesActionOutput: a pod going into CrashLoopBackOff
// gets its alert, and the two actions bound to the channel post the
// previous container's logs and kubectl describe into the alert's thread,
// run as the channel's identity.
func TestCrashLoopAlertCarriesActionOutput(t *testing.T) {
	ctx := t.Context()
	const ns = "actions-e2e"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, env.BindGroupToClusterRole(ctx, "e2e-actions-readers", "view"))
	srv := startSlack(t)
	a := startAgent(t, actionsConfig(srv.APIURL(), ns))
	waitReady(t, a)
	waitConnected(t, srv, 1)

	// A healthy pod first, whose previous run left logs; then it starts crash-looping.
	_, err := env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("api", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	pod, err := env.WaitForPod(ctx, ns, "app=api", testenv.PodReady)
	require.NoError(t, err)
	require.NoError(t, env.SetPodLogs(ctx, ns, pod.Name, pod.Spec.Containers[0].Name, "", "starting api\npanic: cannot reach the database\n"))
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, testenv.CrashLoopLabel)
	_, err = env.Client.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)

	alert := waitSlack(t, srv, "alerts", "the crash-loop alert", func(m slacktest.Message) bool {
		return strings.Contains(m.Text, "Pod "+ns+"/"+pod.Name+" is failing (CrashLoopBackOff)")
	})
	logs := waitSlack(t, srv, "alerts", "the logs action's output in the alert's thread", func(m slacktest.Message) bool {
		return m.ThreadTS == alert.TS && strings.Contains(m.Text, "Action crash-logs")
	})
	require.Contains(t, string(logs.Blocks), "panic: cannot reach the database")
	require.Contains(t, string(logs.Blocks), "as e2e-actions-user", "run as the channel's identity")
	describe := waitSlack(t, srv, "alerts", "the describe action's output in the alert's thread", func(m slacktest.Message) bool {
		return m.ThreadTS == alert.TS && strings.Contains(m.Text, "Action crash-describe")
	})
	require.Contains(t, string(describe.Blocks), "Name:")
	require.Contains(t, string(describe.Blocks), pod.Name)
	require.Contains(t, string(describe.Blocks), "CrashLoopBackOff")
	var top []slacktest.Message
	for _, m := range srv.Messages(srv.ChannelID("alerts")) {
		if m.ThreadTS == "" {
			top = append(top, m)
		}
	}
	require.Len(t, top, 1, "the action output is in the thread, not new messages")
}
