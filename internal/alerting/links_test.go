package alerting

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/pagerduty"
	"github.com/kubechat/kubechat/internal/chat/pagerduty/pagerdutytest"
	"github.com/kubechat/kubechat/internal/chat/slack"
	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/outbox"
	statepkg "github.com/kubechat/kubechat/internal/state"
)

// linkedSetup is a pipeline that sends the "pods" source to a Slack
// channel and a PagerDuty service, each the real client against its fake.
type linkedSetup struct {
	p     *Pipeline
	slack *slacktest.Server
	pd    *pagerdutytest.Server
	// build makes another pipeline over the same platforms and config.
	build func(ob *outbox.Store) *Pipeline
}

// newLinkedSetup bounds the wait for links by wait, and runs the
// pipeline until the test ends.
func newLinkedSetup(t *testing.T, wait time.Duration) linkedSetup {
	t.Helper()
	s := newLinkedPlatforms(t, wait)
	s.p = s.build(nil)
	run(t, s.p)
	return s
}

// newLinkedPlatforms is newLinkedSetup without a pipeline.
func newLinkedPlatforms(t *testing.T, wait time.Duration) linkedSetup {
	t.Helper()
	ss, ps := slacktest.New(), pagerdutytest.New(map[string]string{"R0UT1NGKEY": "ops"})
	t.Cleanup(ss.Close)
	t.Cleanup(ps.Close)
	t.Setenv("TEST_SLACK_BOT_TOKEN", slacktest.BotToken)
	t.Setenv("TEST_SLACK_APP_TOKEN", slacktest.AppToken)
	t.Setenv("TEST_PD_KEY", "R0UT1NGKEY")
	raw, err := config.RawFromYAML("botToken: ${TEST_SLACK_BOT_TOKEN}\nappToken: ${TEST_SLACK_APP_TOKEN}\napiURL: " + ss.APIURL() + "\n")
	require.NoError(t, err)
	sl, err := slack.New("ops-slack", raw, chat.Deps{})
	require.NoError(t, err)
	raw, err = config.RawFromYAML("url: " + ps.URL() + "\nroutingKeys:\n  ops: ${TEST_PD_KEY}\n")
	require.NoError(t, err)
	pd, err := pagerduty.New("pd", raw, chat.Deps{Cluster: "dev"})
	require.NoError(t, err)
	cfg := &config.Config{Cluster: config.Cluster{Name: "dev"}, Channels: []config.Channel{
		{Name: "alerts", ID: "alerts", Platform: "ops-slack", Bindings: config.Bindings{Sources: []string{"pods"}}},
		{Name: "pager", ID: "ops", Platform: "pd", Bindings: config.Bindings{Sources: []string{"pods"}}},
	}}
	state := statepkg.NewMemory()
	build := func(ob *outbox.Store) *Pipeline {
		p, err := New(cfg, map[string]chat.Platform{"ops-slack": sl, "pd": pd},
			Options{State: state, Outbox: ob, Backoff: chat.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Deadline: time.Minute}, LinkWait: wait},
			prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		return p
	}
	return linkedSetup{slack: ss, pd: ps, build: build}
}

func crashLoop(tr event.Transition) event.Event {
	return event.Event{Source: "pods", Cluster: "dev", Type: event.Error, Level: event.Warn, Transition: tr, Reason: "CrashLoopBackOff",
		Object: event.Object{Kind: "Deployment", Namespace: "shop", Name: "web"}}
}

// pdEvents waits for the PagerDuty fake to hold n events.
func pdEvents(t *testing.T, s linkedSetup, n int) []pagerdutytest.Event {
	t.Helper()
	require.Eventually(t, func() bool { return len(s.pd.Events()) >= n }, 30*time.Second, 10*time.Millisecond)
	return s.pd.Events()
}

func TestSinkTriggerLinksToTheChatMessage(t *testing.T) {
	s := newLinkedSetup(t, time.Minute) // a hang guard: the trigger waits for Slack, however slow
	s.p.Emit(t.Context(), crashLoop(event.Failing))
	msgs, err := s.slack.WaitMessages(t.Context(), "C000ALERTS", 1)
	require.NoError(t, err)
	trigger := pdEvents(t, s, 1)[0]
	require.Equal(t, "trigger", trigger.Action)
	require.Equal(t, []pagerdutytest.Link{{Href: slacktest.Permalink("C000ALERTS", msgs[0].TS, ""), Text: "ops-slack alerts"}}, trigger.Links)

	// The resolution shares the trigger's dedup_key: links change nothing
	// of the alert's identity.
	s.p.Emit(t.Context(), crashLoop(event.Resolved))
	events := pdEvents(t, s, 2)
	require.Equal(t, "resolve", events[1].Action)
	require.Equal(t, trigger.DedupKey, events[1].DedupKey)
	require.Len(t, events, 2)
}

func TestSinkPagesWithoutLinksWhileChatIsDown(t *testing.T) {
	s := newLinkedSetup(t, 100*time.Millisecond)
	s.slack.SetDown(true)
	s.p.Emit(t.Context(), crashLoop(event.Failing))
	trigger := pdEvents(t, s, 1)[0]
	require.Equal(t, "trigger", trigger.Action)
	require.Empty(t, trigger.Links, "nothing was posted in chat yet to link to")
	require.Empty(t, s.slack.Messages("C000ALERTS"))

	// Chat comes back: its message is delivered once, and PagerDuty hears
	// nothing more of the alert until it resolves (the barrier).
	s.slack.SetDown(false)
	_, err := s.slack.WaitMessages(t.Context(), "C000ALERTS", 1)
	require.NoError(t, err)
	s.p.Emit(t.Context(), crashLoop(event.Resolved))
	events := pdEvents(t, s, 2)
	require.Len(t, events, 2)
	require.Equal(t, []string{"trigger", "resolve"}, []string{events[0].Action, events[1].Action})
	require.Equal(t, trigger.DedupKey, events[1].DedupKey)
	require.Len(t, s.slack.Messages("C000ALERTS"), 1)
}

// TestReplayedTriggerLinksToTheReplayedChatMessage: an alert queued for
// both channels and delivered to neither before a restart is replayed to
// both, and the trigger still waits for, and links to, the chat message.
func TestReplayedTriggerLinksToTheReplayedChatMessage(t *testing.T) {
	s := newLinkedPlatforms(t, time.Minute) // a hang guard
	ob := outbox.New(nil, "", "", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	before := s.build(ob)
	before.Emit(t.Context(), crashLoop(event.Failing)) // queued, never delivered: it never runs
	before.Close()
	require.Len(t, ob.Pending(), 2)

	after := s.build(ob)
	require.Equal(t, 2, after.Replay(t.Context()))
	run(t, after)
	msgs, err := s.slack.WaitMessages(t.Context(), "C000ALERTS", 1)
	require.NoError(t, err)
	trigger := pdEvents(t, s, 1)[0]
	require.Equal(t, []pagerdutytest.Link{{Href: slacktest.Permalink("C000ALERTS", msgs[0].TS, ""), Text: "ops-slack alerts"}}, trigger.Links)
}
