//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/fleet"
	"github.com/kubechat/kubechat/internal/testenv"
)

// hubAgentConfig is one cluster's agent behind the hub: no chat
// credentials, its alerts from ConfigMaps created in ns, kubectl for #general.
func hubAgentConfig(cluster, natsURL, ns string) string {
	return fmt.Sprintf(`cluster:
  name: %[1]s
  namespace: %[3]s
log:
  format: text
http:
  listen: 127.0.0.1:0
platforms:
  - name: ops-slack
    type: hub
    settings:
      nats:
        url: %[2]s
channels:
  - name: general
    platform: ops-slack
    bindings:
      sources: [changes]
      executors: [kubectl]
    identity:
      user: e2e-fleet-user
      groups: [e2e-fleet-readers]
sources:
  - name: changes
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[3]s]
      resources:
        - type: v1/configmaps
          events: [create]
executors:
  - name: kubectl
    type: kubectl
    policy:
      namespaces: [%[3]s]
      defaultNamespace: %[3]s
`, cluster, natsURL, ns)
}

func hubConfig(apiURL, natsURL string) string {
	return fmt.Sprintf(`cluster:
  name: hub
log:
  format: text
http:
  listen: 127.0.0.1:0
platforms:
  - name: ops-slack
    type: slack
    settings:
      botToken: ${HUB_SLACK_BOT}
      appToken: ${HUB_SLACK_APP}
      apiURL: %s
channels:
  - name: general
    platform: ops-slack
    clusters: [east, west]
    defaultCluster: east
    rateLimit: {perSecond: 100, burst: 100}
fleet:
  leaseDuration: 5s
  nats:
    url: %s
  clusters:
    - name: east
    - name: west
`, apiURL, natsURL)
}

// TestFleetBehindOneHub: the agents of two clusters (two real control
// planes) hold no chat credentials and reach one Slack app through the
// hub, over the real NATS server with JetStream. Each command is answered
// once, by the right cluster; ping by both; a button goes back to the
// cluster that issued it; a second hub replica stands by and takes over
// when the leader stops or dies; alerts from both clusters arrive once
// each, also those raised while no hub ran.
func TestFleetBehindOneHub(t *testing.T) {
	ctx := t.Context()
	const ns = "fleet-hub"
	west, eastPod, westPod := twoClusters(t, ns)

	natsSrv, err := fleet.Embedded(config.EmbeddedNATS{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(natsSrv.Shutdown)
	natsURL := natsSrv.ClientURL()

	srv := slacktest.New()
	t.Cleanup(srv.Close)
	t.Setenv("HUB_SLACK_BOT", slacktest.BotToken)
	t.Setenv("HUB_SLACK_APP", slacktest.AppToken)
	dir := t.TempDir()
	hubCfg := filepath.Join(dir, "hub.yaml")
	require.NoError(t, os.WriteFile(hubCfg, []byte(hubConfig(srv.APIURL(), natsURL)), 0o600))
	hub := startAgentArgs(t, "hub", "--config", hubCfg)
	waitConnected(t, srv, 1)
	eastAgent := startAgent(t, hubAgentConfig("east", natsURL, ns))
	westCfg := filepath.Join(dir, "west.yaml")
	require.NoError(t, os.WriteFile(westCfg, []byte(hubAgentConfig("west", natsURL, ns)), 0o600))
	westAgent := startAgentArgs(t, "run", "--config", westCfg, "--kubeconfig", west.Kubeconfig())
	waitReady(t, eastAgent)
	waitReady(t, westAgent)

	general := srv.ChannelID("general")
	replies := func(ts string) []slacktest.Message {
		var out []slacktest.Message
		for _, m := range srv.Messages(general) {
			if m.ThreadTS == ts {
				out = append(out, m)
			}
		}
		return out
	}
	ask := func(text string) slacktest.Message {
		t.Helper()
		ts, _, err := srv.Mention(general, "UALICE01", text)
		require.NoError(t, err)
		eventually(t, time.Minute, "a reply to "+text, func() error {
			if len(replies(ts)) == 0 {
				return fmt.Errorf("no reply")
			}
			return nil
		})
		// Barrier: a later command's answer means this one's is posted, if any.
		return replies(ts)[0]
	}
	// Until both agents lead and listen, ping reports them not connected.
	eventually(t, time.Minute, "both agents connected", func() error {
		m := ask("ping")
		if s := string(m.Blocks); strings.Contains(s, "not connected") || !strings.Contains(s, "pong from cluster west") || !strings.Contains(s, "pong from cluster east") {
			return fmt.Errorf("%s", s)
		}
		return nil
	})

	ts, _, err := srv.Mention(general, "UALICE01", "kubectl get pods")
	require.NoError(t, err)
	westReply := ask("--cluster west kubectl get pods") // also the barrier for the first
	got := replies(ts)
	require.Len(t, got, 1, "answered exactly once")
	require.Contains(t, string(got[0].Blocks), eastPod.Name, "by the default cluster")
	require.Contains(t, string(got[0].Blocks), "cluster: east")
	require.Contains(t, string(westReply.Blocks), westPod.Name)
	require.NotContains(t, string(westReply.Blocks), eastPod.Name)
	require.Contains(t, string(westReply.Blocks), "cluster: west")

	// West's Run again button goes back to west, which runs it again.
	_, err = srv.Click(general, westReply.TS, "UBOB0001", buttonID(t, westReply, "Run again"), "")
	require.NoError(t, err)
	again := waitSlack(t, srv, "general", "west's re-run", func(m slacktest.Message) bool {
		return m.TS != westReply.TS && m.ThreadTS == westReply.ThreadTS && strings.Contains(string(m.Blocks), westPod.Name)
	})
	require.Contains(t, string(again.Blocks), "cluster: west")

	// Alerts: both clusters, then both again while the hub is stopped.
	alerts := func() map[string]int {
		out := map[string]int{}
		for _, m := range srv.Messages(general) {
			for _, name := range []string{"east-1", "west-1", "east-2", "west-2", "east-3", "west-3", "east-4", "west-4"} {
				if m.ThreadTS == "" && strings.Contains(string(m.Blocks)+m.Text, "cm-"+name) {
					out[name]++
				}
			}
		}
		return out
	}
	create := func(e *testenv.Env, name string) {
		t.Helper()
		_, err := e.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-" + name}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	// arrive creates one ConfigMap in each cluster and waits for both alerts.
	arrive := func(what, eastName, westName string) {
		t.Helper()
		create(env, eastName)
		create(west, westName)
		eventually(t, time.Minute, what, func() error {
			if a := alerts(); a[eastName] == 0 || a[westName] == 0 {
				return fmt.Errorf("%v", a)
			}
			return nil
		})
	}
	arrive("the first alerts", "east-1", "west-1")

	// A second hub replica stands by: it does not open the Slack app's
	// connection while the first leads.
	standby := startAgentArgs(t, "hub", "--config", hubCfg)
	eventually(t, time.Minute, "the second hub standing by", func() error {
		if !strings.Contains(standby.logs(), "standing by: another hub leads") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	require.Equal(t, 1, srv.Connected(), "only the leader listens")

	// The leader stops cleanly: the standby takes over and delivers.
	require.NoError(t, hub.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-hub.done)
	arrive("the second alerts, through the second hub", "east-2", "west-2")

	// The new leader dies: alerts wait in JetStream while no hub runs.
	require.NoError(t, standby.cmd.Process.Kill())
	<-standby.done
	create(env, "east-3")
	create(west, "west-3")
	eventually(t, time.Minute, "both alerts in their streams", func() error { return waiting(ctx, natsURL, "east", "west") })
	// No hub runs for hubDown (2 minutes unless KUBECHAT_E2E_HUB_DOWN says
	// otherwise): the agents keep publishing into JetStream meanwhile.
	hubDown := 2 * time.Minute
	if d := os.Getenv("KUBECHAT_E2E_HUB_DOWN"); d != "" {
		var err error
		hubDown, err = time.ParseDuration(d)
		require.NoError(t, err)
	}
	time.Sleep(hubDown)
	create(env, "east-4") // and at the end of the outage
	create(west, "west-4")
	// A new hub takes the dead one's lease once it expired, and delivers.
	startAgentArgs(t, "hub", "--config", hubCfg)
	eventually(t, 2*time.Minute, "every alert", func() error {
		a := alerts()
		for _, name := range []string{"east-1", "west-1", "east-2", "west-2", "east-3", "west-3", "east-4", "west-4"} {
			if a[name] == 0 {
				return fmt.Errorf("%v", a)
			}
		}
		return nil
	})
	// Barrier: a command answered after them; then no alert is there twice.
	ask("--cluster west kubectl get pods")
	for name, n := range alerts() {
		require.Equal(t, 1, n, "alert %s delivered once", name)
	}
}

// waiting reports nil once each cluster's stream holds a message the
// hub has not taken yet.
func waiting(ctx context.Context, natsURL string, clusters ...string) error {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for _, c := range clusters {
		cons, err := js.Consumer(ctx, fleet.Stream(c), fleet.Consumer)
		if err != nil {
			return err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending == 0 {
			return fmt.Errorf("nothing waits in %s", fleet.Stream(c))
		}
	}
	return nil
}
