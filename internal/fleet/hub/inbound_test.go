package hub_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/teams/teamstest"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/fleet"
	"github.com/kubechat/kubechat/internal/fleet/hub"
	"github.com/kubechat/kubechat/internal/health"
	"github.com/kubechat/kubechat/internal/httpserver"
)

// teamsHub is a hub replica with its HTTP server, as `kubechat hub` runs it.
type teamsHub struct {
	reg  *prometheus.Registry
	url  string
	stop func()
}

func startTeamsHub(t *testing.T, cfg *config.Config, identity string) *teamsHub {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	tr := health.New(time.Minute)
	srv, err := httpserver.New("127.0.0.1:0", tr, reg, log)
	require.NoError(t, err)
	url := "http://" + srv.Addr()
	h, err := hub.New(cfg, log, hub.Options{Metrics: reg, Health: tr, Identity: identity, URL: url})
	require.NoError(t, err)
	srv.SetInbound(h.Inbound())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Start(ctx, time.Second) })
	wg.Go(func() { _ = h.Run(ctx) })
	th := &teamsHub{reg: reg, url: url}
	th.stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(th.stop)
	return th
}

// leads reads the hub's kubechat_leader.
func (h *teamsHub) leads(t *testing.T) bool {
	mfs, err := h.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "kubechat_leader" {
			return mf.GetMetric()[0].GetGauge().GetValue() == 1
		}
	}
	return false
}

// TestTeamsThroughEitherHub: a platform that calls back (Teams) reaches
// the fleet through whichever hub replica its webhook hits: the standby
// hands the activity to the leader, which routes the command to the
// cluster's agent and answers in Teams; what Teams must remember is kept
// in NATS for the next leader, which takes over and delivers.
func TestTeamsThroughEitherHub(t *testing.T) {
	n := startNATS(t)
	srv := teamstest.New()
	t.Cleanup(srv.Close)
	alerts := srv.AddChannel("alerts")
	t.Setenv("TEST_TEAMS_PASSWORD", teamstest.AppPassword)
	yaml := fmt.Sprintf(`cluster:
  name: hub
platforms:
  - name: ops-teams
    type: teams
    settings:
      appID: %s
      appPassword: ${TEST_TEAMS_PASSWORD}
      serviceURL: %s
      openIDURL: %s
      tokenURL: %s
channels:
  - name: alerts
    id: %q
    platform: ops-teams
    clusters: [east, west]
    defaultCluster: east
fleet:
  leaseDuration: 6s
  nats:
    url: %s
  clusters:
    - name: east
    - name: west
`, teamstest.AppID, srv.ServiceURL(), srv.OpenIDURL(), srv.TokenURL(), alerts, n.url())
	load := func() *config.Config {
		cfg, err := config.Parse(config.Known{PlatformTypes: []string{"teams"}}, config.File{Name: "hub.yaml", Data: []byte(yaml)})
		require.NoError(t, err)
		return cfg
	}
	a := startTeamsHub(t, load(), "hub-a")
	waitFor(t, "hub-a leads", func() bool { return a.leads(t) })
	b := startTeamsHub(t, load(), "hub-b")

	heard := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	var listeners sync.WaitGroup
	t.Cleanup(func() { cancel(); listeners.Wait() })
	east := newAgentOf(t, "ops-teams", "east", n.url())
	listeners.Go(func() { _ = east.Listen(ctx, echo("east", heard)) })

	// Teams calls the standby: it hands the activity to the leader.
	srv.SetBotEndpoint(b.url + "/teams/ops-teams/api/messages")
	bot := func(contains string) bool {
		for _, act := range srv.Activities(alerts) {
			if strings.HasPrefix(act.From, "28:") && strings.Contains(act.Text+string(act.Attachments), contains) {
				return true
			}
		}
		return false
	}
	waitFor(t, "an answer from east through the standby", func() bool {
		_, status, err := srv.Mention(alerts, "alice", "kubectl get pods")
		if err != nil || status >= 300 {
			return false // no leader known yet, or the agent not listening yet
		}
		waitFor(t, "the answer", func() bool { return bot("answer from east") || bot("not connected") })
		return bot("answer from east")
	})
	require.Contains(t, <-heard, "east: kubectl get pods by ")
	require.False(t, b.leads(t), "the standby did not lead")

	// What Teams keeps (the channel's conversation reference) is in NATS.
	nc, err := nats.Connect(n.url())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, fleet.StateBucket)
	require.NoError(t, err)
	keys, err := kv.ListKeys(ctx)
	require.NoError(t, err)
	var stored []string
	for k := range keys.Keys() {
		stored = append(stored, k)
	}
	require.NotEmpty(t, stored, "the conversation reference is kept for the next leader")

	// The leader stops; the standby leads and delivers the next alert.
	a.stop()
	waitFor(t, "hub-b leads", func() bool { return b.leads(t) })
	publish(t, east, chat.Channel{Name: "alerts", ID: alerts}, chat.Message{Title: "alert after the hand-over", Key: "east-handover"})
	waitFor(t, "the alert through hub-b", func() bool { return bot("alert after the hand-over") })
}
