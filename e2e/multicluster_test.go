//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/testenv"
)

// fleetConfig is one cluster's agent in a shared Slack workspace: its own
// app (tokens from the environment), the peer bots it overhears, and the
// shared channel whose default cluster is "east".
func fleetConfig(cluster, apiURL, tokenEnv, peer, ns string) string {
	return fmt.Sprintf(`cluster:
  name: %[1]s
  namespace: %[5]s
log:
  format: text
http:
  listen: 127.0.0.1:0
platforms:
  - name: ops-slack
    type: slack
    settings:
      botToken: ${%[3]s_BOT}
      appToken: ${%[3]s_APP}
      apiURL: %[2]s
      peerBots: [%[4]s]
channels:
  - name: general
    platform: ops-slack
    defaultCluster: east
    bindings:
      executors: [kubectl]
    identity:
      user: e2e-fleet-user
      groups: [e2e-fleet-readers]
executors:
  - name: kubectl
    type: kubectl
    policy:
      namespaces: [%[5]s]
      defaultNamespace: %[5]s
`, cluster, apiURL, tokenEnv, peer, ns)
}

// twoClusters starts a second control plane (west) next to the suite's
// (east), and runs a pod of a Deployment in namespace ns of each, where
// the group e2e-fleet-readers may view.
func twoClusters(t *testing.T, ns string) (west *testenv.Env, eastPod, westPod corev1.Pod) {
	t.Helper()
	ctx := t.Context()
	west, err := testenv.Start(ctx, testenv.Options{Nodes: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = west.Stop() })
	for _, e := range []*testenv.Env{env, west} {
		require.NoError(t, e.CreateNamespace(ctx, ns))
		require.NoError(t, e.BindGroupToClusterRole(ctx, "e2e-fleet-readers", "view"))
	}
	_, err = env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("east-web", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = west.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("west-web", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	eastPod, err = env.WaitForPod(ctx, ns, "app=east-web", func(p corev1.Pod) bool { return true })
	require.NoError(t, err)
	westPod, err = west.WaitForPod(ctx, ns, "app=west-web", func(p corev1.Pod) bool { return true })
	require.NoError(t, err)
	return west, eastPod, westPod
}

// TestTwoClustersShareOneWorkspace: the agents of two clusters, each with
// its own Slack app, share #general. A command is answered exactly once, by
// the channel's default cluster or the one --cluster names, with its own
// cluster's pods; ping is answered by both; a button is answered by the
// agent that posted it.
func TestTwoClustersShareOneWorkspace(t *testing.T) {
	const ns = "fleet"
	west, eastPod, westPod := twoClusters(t, ns)

	srv := slacktest.New()
	t.Cleanup(srv.Close)
	westApp := srv.AddApp("kubechat-west", true)
	require.True(t, srv.SubscribeMessageEvents(slacktest.BotUserID))
	t.Setenv("EAST_SLACK_BOT", slacktest.BotToken)
	t.Setenv("EAST_SLACK_APP", slacktest.AppToken)
	t.Setenv("WEST_SLACK_BOT", westApp.BotToken)
	t.Setenv("WEST_SLACK_APP", westApp.AppToken)
	eastAgent := startAgent(t, fleetConfig("east", srv.APIURL(), "EAST_SLACK", westApp.BotUserID, ns))
	westCfg := filepath.Join(t.TempDir(), "west.yaml")
	require.NoError(t, os.WriteFile(westCfg, []byte(fleetConfig("west", srv.APIURL(), "WEST_SLACK", slacktest.BotUserID, ns)), 0o600))
	westAgent := startAgentArgs(t, "run", "--config", westCfg, "--kubeconfig", west.Kubeconfig())
	waitReady(t, eastAgent)
	waitReady(t, westAgent)
	waitConnected(t, srv, 2)

	general := srv.ChannelID("general")
	say := func(text string) string {
		t.Helper()
		ts, pushed, err := srv.Say(general, "UALICE01", "<@"+slacktest.BotUserID+"> "+text)
		require.NoError(t, err)
		require.Equal(t, 3, pushed, "app_mention to east, the message to both")
		return ts
	}
	replies := func(ts string) []slacktest.Message {
		var out []slacktest.Message
		for _, m := range srv.Messages(general) {
			if m.ThreadTS == ts {
				out = append(out, m)
			}
		}
		return out
	}
	// settled waits for want replies in the thread of ts, then a little more
	// to catch an extra one.
	settled := func(ts string, want int) []slacktest.Message {
		t.Helper()
		eventually(t, 30*time.Second, fmt.Sprintf("%d replies", want), func() error {
			if n := len(replies(ts)); n < want {
				return fmt.Errorf("%d replies", n)
			}
			return nil
		})
		// Both agents log each command they handle; wait until both did.
		ping := say("ping")
		eventually(t, 30*time.Second, "both agents past the command", func() error {
			if n := len(replies(ping)); n < 2 {
				return fmt.Errorf("%d pongs", n)
			}
			return nil
		})
		return replies(ts)
	}

	// No --cluster: the channel's default cluster (east) answers, once.
	ts := say("kubectl get pods")
	got := settled(ts, 1)
	require.Len(t, got, 1, "answered exactly once")
	require.Equal(t, slacktest.BotUserID, got[0].User, "by east's app")
	require.Contains(t, string(got[0].Blocks), eastPod.Name)
	require.Contains(t, string(got[0].Blocks), "cluster: east")

	// --cluster west: only west answers, with west's pods, through its own app.
	ts = say("--cluster west kubectl get pods")
	got = settled(ts, 1)
	require.Len(t, got, 1, "answered exactly once")
	require.Equal(t, westApp.BotUserID, got[0].User, "by west's app")
	require.Contains(t, string(got[0].Blocks), westPod.Name)
	require.NotContains(t, string(got[0].Blocks), eastPod.Name)
	require.Contains(t, string(got[0].Blocks), "cluster: west")

	// ping: every cluster answers.
	ts = say("ping")
	got = settled(ts, 2)
	require.Len(t, got, 2)
	var pongs []string
	for _, m := range got {
		pongs = append(pongs, m.Text)
	}
	joined := strings.Join(pongs, "\n")
	require.Contains(t, joined, "pong from cluster east")
	require.Contains(t, joined, "pong from cluster west")

	// West's Run again button goes to west's app, and west answers it.
	westReply := waitSlack(t, srv, "general", "west's reply", func(m slacktest.Message) bool {
		return m.User == westApp.BotUserID && strings.Contains(string(m.Blocks), westPod.Name)
	})
	_, err := srv.Click(general, westReply.TS, "UBOB0001", buttonID(t, westReply, "Run again"), "")
	require.NoError(t, err)
	again := waitSlack(t, srv, "general", "west's re-run", func(m slacktest.Message) bool {
		return m.TS != westReply.TS && m.User == westApp.BotUserID && m.ThreadTS == westReply.ThreadTS && strings.Contains(string(m.Blocks), westPod.Name)
	})
	require.Contains(t, string(again.Blocks), "cluster: west")
}
