//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/podrun"
	"github.com/kubechat/kubechat/internal/podrun/podruntest"
	"github.com/kubechat/kubechat/internal/testenv"
)

// TestCommandPodSurvivesARestart: a command runs in its pod while the
// agent is stopped (SIGTERM, as a deploy stops it) and started again. The
// pod is left running, and the new agent adopts it: the command's result
// is posted once, into the thread of the command, and the pod is deleted.
func TestCommandPodSurvivesARestart(t *testing.T) {
	ctx := t.Context()
	const ns = "adopt-e2e"
	cmdNS := ns + "-cmd"
	for _, n := range []string{ns, cmdNS} {
		require.NoError(t, env.CreateNamespace(ctx, n))
	}
	_, err := env.ServiceAccountConfig(ctx, cmdNS, "reader")
	require.NoError(t, err)
	require.NoError(t, env.BindGroupToClusterRole(ctx, "system:serviceaccounts:"+cmdNS, "view"))
	// A rollout that does not finish until the test scales it down.
	_, err = env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("slow", map[string]string{"kubechat.test/crashloop": "true"}), metav1.CreateOptions{})
	require.NoError(t, err)

	kubelet, err := podruntest.Start(ctx, env, podruntest.Options{Images: map[string]string{podImage: kubechat}})
	require.NoError(t, err)
	t.Cleanup(kubelet.Stop)

	srv := startSlack(t)
	for _, ch := range []string{"inproc", "isolated", "jobs"} {
		srv.AddChannel(ch)
	}
	cfg := podConfig(srv.APIURL(), ns)
	first := startAgent(t, cfg)
	waitReady(t, first)
	waitConnected(t, srv, 1)

	ts, _, err := srv.Mention(srv.ChannelID("isolated"), "UALICE01", "kubectl rollout status deploy/slow")
	require.NoError(t, err)
	var pod string
	eventually(t, time.Minute, "the command pod runs", func() error {
		pods, err := env.Client.CoreV1().Pods(cmdNS).List(ctx, metav1.ListOptions{LabelSelector: podrun.LabelCommand + "=true"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 || kubelet.Started() == 0 {
			return fmt.Errorf("%d command pods, %d started", len(pods.Items), kubelet.Started())
		}
		pod = pods.Items[0].Name
		require.Equal(t, "command-pod/"+cmdNS+"/"+pod, pods.Items[0].Annotations[podrun.AnnotationKey])
		require.Equal(t, ts, pods.Items[0].Annotations[podrun.AnnotationThreadID])
		return nil
	})

	// A deploy: the agent is stopped while the command runs.
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-first.done:
	case <-time.After(time.Minute):
		t.Fatalf("the agent did not stop:\n%s", first.logs())
	}
	require.Contains(t, first.logs(), "command pod left running for the next agent")
	_, err = env.Client.CoreV1().Pods(cmdNS).Get(ctx, pod, metav1.GetOptions{})
	require.NoError(t, err, "the command pod survives the agent")

	second := startAgent(t, cfg)
	waitReady(t, second)
	eventually(t, time.Minute, "the new agent adopts the pod", func() error {
		if !strings.Contains(second.logs(), "adopting a command pod of an earlier agent") {
			return fmt.Errorf("not adopted yet")
		}
		return nil
	})
	// The rollout ends; the command in the pod says so.
	d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "slow", metav1.GetOptions{})
	require.NoError(t, err)
	d.Spec.Replicas = ptr.To[int32](0)
	_, err = env.Client.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
	require.NoError(t, err)

	isResult := func(m slacktest.Message) bool {
		return m.ThreadTS == ts && strings.Contains(slackText(m), `deployment "slow" successfully rolled out`)
	}
	waitSlack(t, srv, "isolated", "the adopted command's result in its thread", isResult)
	eventually(t, time.Minute, "the adopted pod deleted", func() error {
		if _, err := env.Client.CoreV1().Pods(cmdNS).Get(ctx, pod, metav1.GetOptions{}); err == nil {
			return fmt.Errorf("pod %s still exists", pod)
		}
		return nil
	})
	// Once: a command typed after it is answered, and the result is still
	// the only one (replies in a thread are posted in order).
	ts2, _, err := srv.Mention(srv.ChannelID("inproc"), "UALICE01", "kubectl get deploy slow")
	require.NoError(t, err)
	waitSlack(t, srv, "inproc", "the sentinel reply", func(m slacktest.Message) bool { return m.ThreadTS == ts2 && strings.Contains(slackText(m), "slow") })
	n := 0
	for _, m := range srv.Messages(srv.ChannelID("isolated")) {
		if isResult(m) {
			n++
		}
	}
	require.Equal(t, 1, n, "the result was posted once")
	require.Contains(t, second.logs(), "posted the result of an adopted command pod")
}
