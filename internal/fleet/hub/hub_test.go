package hub_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/button"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/fleet"
	"github.com/kubechat/kubechat/internal/fleet/agent"
	"github.com/kubechat/kubechat/internal/fleet/hub"
)

// bound is a hang guard, not a timing assertion.
const bound = 2 * time.Minute

// natsServer is the real NATS server with JetStream, embedded, on a port
// that stays the same across restarts.
type natsServer struct {
	t    testing.TB
	dir  string
	addr string
	srv  *server.Server
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	n := &natsServer{t: t, dir: t.TempDir(), addr: addr}
	n.start()
	t.Cleanup(func() { n.srv.Shutdown() })
	return n
}

func (n *natsServer) start() {
	srv, err := fleet.Embedded(config.EmbeddedNATS{Listen: n.addr, StoreDir: n.dir})
	require.NoError(n.t, err)
	n.srv = srv
}

func (n *natsServer) restart() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.start()
}

func (n *natsServer) url() string { return "nats://" + n.addr }

// hubYAML is a hub with one Slack app and a channel shared by east and west.
func hubYAML(slackURL, natsURL, defaultCluster string) string {
	return fmt.Sprintf(`cluster:
  name: hub
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
    defaultCluster: %q
    rateLimit: {perSecond: 1000, burst: 1000}
fleet:
  nats:
    url: %s
  clusters:
    - name: east
    - name: west
`, slackURL, defaultCluster, natsURL)
}

func loadConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	t.Setenv("HUB_SLACK_BOT", slacktest.BotToken)
	t.Setenv("HUB_SLACK_APP", slacktest.AppToken)
	cfg, err := config.Parse(config.Known{PlatformTypes: []string{"slack"}}, config.File{Name: "hub.yaml", Data: []byte(yaml)})
	require.NoError(t, err)
	return cfg
}

// runningHub runs a hub until stop.
type runningHub struct {
	cancel context.CancelFunc
	done   chan error
}

func startHub(t *testing.T, cfg *config.Config) *runningHub {
	t.Helper()
	return startHubAs(t, cfg, "")
}

// startHubAs runs a hub named identity in the fleet's lease.
func startHubAs(t *testing.T, cfg *config.Config, identity string) *runningHub {
	t.Helper()
	h, err := hub.New(cfg, slog.New(slog.DiscardHandler), hub.Options{Metrics: prometheus.NewRegistry(), Identity: identity})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningHub{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- h.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *runningHub) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

// newAgent is cluster's hub platform, as its agent builds it.
func newAgent(t testing.TB, cluster, natsURL string) chat.Platform {
	t.Helper()
	return newAgentOf(t, "ops-slack", cluster, natsURL)
}

// newAgentOf is cluster's hub platform for the hub's platform named platform.
func newAgentOf(t testing.TB, platform, cluster, natsURL string) chat.Platform {
	t.Helper()
	raw, err := config.RawFromYAML("nats:\n  url: " + natsURL + "\n")
	require.NoError(t, err)
	p, err := agent.New(platform, raw, chat.Deps{Cluster: cluster, Log: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return p
}

// publish posts m through p as the agent's queue does: retried until
// JetStream has it.
func publish(t testing.TB, p chat.Platform, to chat.Channel, m chat.Message) chat.MessageRef {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	ref, _, err := chat.Send(ctx, p, to, m, chat.Backoff{Initial: 50 * time.Millisecond, Max: time.Second}, time.Now().Add(bound))
	require.NoError(t, err)
	return ref
}

// alertsFromBoth publishes "alert <cluster> <i>" (key <cluster>-<i>) for
// i from first to last, from east and west at once, each as its agent's
// queue does; before, when set, runs before each publish.
func alertsFromBoth(t testing.TB, east, west chat.Platform, to chat.Channel, first, last int, before func(cluster string, i int)) {
	t.Helper()
	var wg sync.WaitGroup
	for _, a := range []struct {
		name string
		p    chat.Platform
	}{{"east", east}, {"west", west}} {
		wg.Go(func() {
			for i := first; i <= last; i++ {
				if before != nil {
					before(a.name, i)
				}
				publish(t, a.p, to, chat.Message{Title: fmt.Sprintf("alert %s %d", a.name, i), Key: fmt.Sprintf("%s-%d", a.name, i)})
			}
		})
	}
	wg.Wait()
}

// titles counts the channel's top-level messages by title prefix.
func titles(srv *slacktest.Server, channel, prefix string) map[string]int {
	out := map[string]int{}
	for _, m := range srv.Messages(channel) {
		if m.ThreadTS == "" && strings.HasPrefix(m.Text, prefix) {
			out[m.Text]++
		}
	}
	return out
}

// waitFor waits until cond holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAlertsOnceThroughHubOutage: both clusters alert while the hub is
// down (and once before it ever ran); after it returns every alert is
// delivered exactly once, and an edit replaces the message it edits.
func TestAlertsOnceThroughHubOutage(t *testing.T) {
	n := startNATS(t)
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	general := srv.ChannelID("general")
	cfg := loadConfig(t, hubYAML(srv.APIURL(), n.url(), "east"))
	to := chat.Channel{Name: "general", ID: "general"}
	east, west := newAgent(t, "east", n.url()), newAgent(t, "west", n.url())

	h := startHub(t, cfg)
	first := publish(t, east, to, chat.Message{Title: "alert east 0", Key: "east-0"})
	waitFor(t, "the first alert", func() bool { return len(titles(srv, general, "alert ")) == 1 })

	h.stop()
	const each = 20
	alertsFromBoth(t, east, west, to, 1, each, nil)
	// A retry of a message JetStream already has (its ack was lost) is dropped.
	publish(t, east, to, chat.Message{Title: "alert east 1", Key: "east-1"})
	// The first alert resolves: an edit of the message the hub posted.
	publish(t, east, to, chat.Message{Title: "alert east 0 resolved", Key: "east-0-resolved", Replace: &first})
	// Barriers: the last message of each cluster.
	publish(t, east, to, chat.Message{Title: "done east", Key: "east-done"})
	publish(t, west, to, chat.Message{Title: "done west", Key: "west-done"})
	require.Empty(t, titles(srv, general, "alert west"), "nothing is delivered while the hub is down")

	startHub(t, loadConfig(t, hubYAML(srv.APIURL(), n.url(), "east")))
	waitFor(t, "both barriers", func() bool { return len(titles(srv, general, "done ")) == 2 })
	got := titles(srv, general, "alert ")
	require.Len(t, got, 2*each+1)
	for title, count := range got {
		require.Equal(t, 1, count, "%q delivered once", title)
	}
	require.Equal(t, 1, got["alert east 0 resolved"], "the edit replaced the first message")
	require.Zero(t, got["alert east 0"])
	for _, m := range srv.Messages(general) {
		if m.Text == "alert east 0 resolved" {
			require.Equal(t, 1, m.Edits)
		}
	}
}

// TestTwoHubsDeliverOnce: two hub replicas share the fleet's lease; the
// leader stops while both clusters publish, the standby takes over, and
// every alert is delivered exactly once.
func TestTwoHubsDeliverOnce(t *testing.T) {
	n := startNATS(t)
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	general := srv.ChannelID("general")
	to := chat.Channel{Name: "general", ID: "general"}
	east, west := newAgent(t, "east", n.url()), newAgent(t, "west", n.url())

	a := startHubAs(t, loadConfig(t, hubYAML(srv.APIURL(), n.url(), "east")), "hub-a")
	publish(t, east, to, chat.Message{Title: "alert east 0", Key: "east-0"})
	waitFor(t, "the first alert", func() bool { return len(titles(srv, general, "alert ")) == 1 })
	startHubAs(t, loadConfig(t, hubYAML(srv.APIURL(), n.url(), "east")), "hub-b")

	const each = 30
	alertsFromBoth(t, east, west, to, 1, each, func(cluster string, i int) {
		if cluster == "east" && i == each/2+1 {
			a.stop() // the leader goes while messages flow
		}
	})
	publish(t, east, to, chat.Message{Title: "done east", Key: "east-done"})
	publish(t, west, to, chat.Message{Title: "done west", Key: "west-done"})
	// After a hand-over, messages the old leader gave back may come after
	// the barriers: wait for every alert too.
	waitFor(t, "every alert and both barriers", func() bool {
		return len(titles(srv, general, "done ")) == 2 && len(titles(srv, general, "alert ")) == 2*each+1
	})
	for title, count := range titles(srv, general, "alert ") {
		require.Equal(t, 1, count, "%q delivered once", title)
	}
}

// TestAlertsOnceThroughNATSRestart: NATS restarts while both clusters
// publish: nothing is lost or duplicated.
func TestAlertsOnceThroughNATSRestart(t *testing.T) {
	n := startNATS(t)
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	general := srv.ChannelID("general")
	startHub(t, loadConfig(t, hubYAML(srv.APIURL(), n.url(), "east")))
	to := chat.Channel{Name: "general", ID: "general"}
	east, west := newAgent(t, "east", n.url()), newAgent(t, "west", n.url())

	const each = 40
	halfway := make(chan struct{}, 2)
	restarted := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		alertsFromBoth(t, east, west, to, 0, each-1, func(_ string, i int) {
			if i == each/2 {
				halfway <- struct{}{}
				<-restarted
			}
		})
	}()
	<-halfway
	<-halfway
	n.restart()
	close(restarted)
	<-published
	publish(t, east, to, chat.Message{Title: "done east", Key: "east-done"})
	publish(t, west, to, chat.Message{Title: "done west", Key: "west-done"})
	waitFor(t, "both barriers", func() bool { return len(titles(srv, general, "done ")) == 2 })
	got := titles(srv, general, "alert ")
	require.Len(t, got, 2*each)
	for title, count := range got {
		require.Equal(t, 1, count, "%q delivered once", title)
	}
}

// echo is an agent's command handler: it says which cluster answers, and
// offers a button that cluster issued.
func echo(cluster string, heard chan<- string) chat.Handler {
	return chat.HandlerFunc(func(_ context.Context, in chat.Inbound) chat.Message {
		heard <- cluster + ": " + in.Text + in.ButtonID + " by " + in.UserID
		if in.ButtonID != "" {
			return chat.Message{Title: "clicked on " + cluster, Context: "cluster: " + cluster}
		}
		return chat.Message{Title: "answer from " + cluster + ": " + in.Text, Context: "cluster: " + cluster,
			Sections: []chat.Section{{Buttons: []chat.Button{{Label: "Run again", ID: button.Tag(cluster) + ".signed"}}}}}
	})
}

// TestCommandsRouteByCluster: a mention goes to the channel's default
// cluster, or the one --cluster names; ping goes to all; a click goes to
// the cluster that issued the button; each is answered once.
func TestCommandsRouteByCluster(t *testing.T) {
	n := startNATS(t)
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	general := srv.ChannelID("general")
	startHub(t, loadConfig(t, hubYAML(srv.APIURL(), n.url(), "east")))
	heard := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	var listeners sync.WaitGroup
	t.Cleanup(func() { cancel(); listeners.Wait() })
	for _, c := range []string{"east", "west"} {
		p := newAgent(t, c, n.url())
		listeners.Go(func() { _ = p.Listen(ctx, echo(c, heard)) })
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
	ask := func(text string) slacktest.Message {
		t.Helper()
		ts, _, err := srv.Mention(general, "UALICE01", text)
		require.NoError(t, err)
		waitFor(t, "a reply to "+text, func() bool { return len(replies(ts)) > 0 })
		got := replies(ts)
		require.Len(t, got, 1, "answered once")
		return got[0]
	}
	// Until both agents listen, a command gets "not connected"; wait for them.
	waitFor(t, "both agents", func() bool {
		ts, _, err := srv.Mention(general, "UALICE01", "ping")
		if err != nil {
			return false // the hub is not connected to Slack yet
		}
		waitFor(t, "a pong", func() bool { return len(replies(ts)) > 0 })
		ok := !strings.Contains(replies(ts)[0].Text, "not connected") && !strings.Contains(string(replies(ts)[0].Blocks), "not connected")
		for len(heard) > 0 {
			<-heard
		}
		return ok
	})

	m := ask("kubectl get pods")
	require.Contains(t, m.Text, "answer from east: kubectl get pods")
	require.Equal(t, "east: kubectl get pods by UALICE01", <-heard, "the caller's identity travels with the command")

	m = ask("--cluster west kubectl get pods")
	require.Contains(t, m.Text, "answer from west")
	require.Equal(t, "west: --cluster west kubectl get pods by UALICE01", <-heard)

	m = ask("ping")
	require.Contains(t, string(m.Blocks), "answer from east: ping")
	require.Contains(t, string(m.Blocks), "answer from west: ping")
	got := []string{<-heard, <-heard}
	require.ElementsMatch(t, []string{"east: ping by UALICE01", "west: ping by UALICE01"}, got)

	m = ask("--cluster north kubectl get pods")
	require.Contains(t, string(m.Blocks), "is not a cluster of this channel")

	// West's button goes back to west.
	westReply := ask("--cluster west kubectl get pods")
	<-heard
	_, err := srv.Click(general, westReply.TS, "UBOB0001", button.Tag("west")+".signed", "")
	require.NoError(t, err)
	require.Equal(t, "west: "+button.Tag("west")+".signed by UBOB0001", <-heard)
	waitFor(t, "the click's answer", func() bool {
		for _, m := range srv.Messages(general) {
			if strings.Contains(m.Text, "clicked on west") {
				return true
			}
		}
		return false
	})

	m = ask("clusters")
	require.Contains(t, string(m.Blocks), "east")
	require.Contains(t, string(m.Blocks), "connected")
	require.Empty(t, heard, "clusters is the hub's own")
}
