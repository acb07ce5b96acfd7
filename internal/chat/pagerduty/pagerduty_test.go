package pagerduty

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/chattest"
	"github.com/kubechat/kubechat/internal/chat/pagerduty/pagerdutytest"
	"github.com/kubechat/kubechat/internal/config"
)

// routingKey is the test service's integration key; it must never show in an error.
const routingKey = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY42"

func newFake(t *testing.T) *pagerdutytest.Server {
	srv := pagerdutytest.New(map[string]string{routingKey: "ops"})
	t.Cleanup(srv.Close)
	return srv
}

func newPlatform(t *testing.T, srv *pagerdutytest.Server, extra string) chat.Platform {
	t.Helper()
	t.Setenv("PD_OPS_KEY", routingKey)
	raw, err := config.RawFromYAML("url: " + srv.URL() + "\nroutingKeys:\n  ops: ${PD_OPS_KEY}\n" + extra)
	require.NoError(t, err)
	p, err := New("pd", raw, chat.Deps{Cluster: "prod"})
	require.NoError(t, err)
	return p
}

// fake adapts the Events API fake to the conformance suite: an alert is a
// message, every later event about it an edit.
type fake struct{ srv *pagerdutytest.Server }

func (f fake) Messages(channel string) []chattest.Posted {
	var out []chattest.Posted
	for _, a := range f.srv.Alerts(channel) {
		out = append(out, chattest.Posted{ID: a.ID, Text: a.Text, Edits: a.Edits})
	}
	return out
}

func (f fake) Files(string) []chattest.Uploaded { return nil }
func (f fake) Mention(string, string, string) error {
	return errors.New("PagerDuty sends nothing to the agent")
}

func (f fake) Click(string, string, string, string, string) error {
	return errors.New("PagerDuty sends nothing to the agent")
}
func (f fake) FailNext(n, status int, retryAfter time.Duration) {
	f.srv.FailNext(n, status, retryAfter)
}
func (f fake) Drop()            {}
func (f fake) Connections() int { return 0 }

func TestConformance(t *testing.T) {
	chattest.RunConformance(t, func(t *testing.T) chattest.Setup {
		srv := newFake(t)
		return chattest.Setup{
			Platform: newPlatform(t, srv, ""),
			Fake:     fake{srv},
			Channel:  chat.Channel{Name: "pagerduty", ID: "ops"},
			Secrets:  []string{routingKey},
			Sink:     true,
		}
	})
}

// TestTriggerThenResolveShareOneDedupKey: a failing alert triggers, its
// recovery (an edit of the alert's ref, marked Resolved) resolves, both
// under the alert's identity; an update in between adds to the same alert.
func TestTriggerThenResolveShareOneDedupKey(t *testing.T) {
	srv := newFake(t)
	p := newPlatform(t, srv, "severity: {warning: error}\n")
	ops := chat.Channel{Name: "pagerduty", ID: "ops"}
	failing := chat.Message{
		Title: "CrashLoopBackOff: shop/web", Level: chat.LevelWarning, Key: "msg-1", Alert: "alert.0123abcd",
		Sections: []chat.Section{{Text: "Back-off restarting failed container", Fields: []chat.Field{
			{Name: "Kind", Value: "Deployment"}, {Name: "Name", Value: "web"}, {Name: "Namespace", Value: "shop"}, {Name: "Reason", Value: "CrashLoopBackOff"},
		}}},
		Context: "cluster: prod",
	}
	ref, err := p.Post(t.Context(), ops, failing)
	require.NoError(t, err)
	require.Equal(t, "alert.0123abcd", ref.ID, "the ref is the dedup_key")
	repeat := failing
	repeat.Key, repeat.Alert, repeat.Replace = "msg-1.2", "", &ref
	_, err = p.Post(t.Context(), ops, repeat)
	require.NoError(t, err)
	_, err = p.Post(t.Context(), ops, chat.Message{Title: "Resolved: shop/web", Level: chat.LevelSuccess, Key: "msg-2", Alert: "alert.0123abcd", Resolved: true, Replace: &ref})
	require.NoError(t, err)

	events := srv.Events()
	require.Len(t, events, 3)
	for _, e := range events {
		require.Equal(t, "alert.0123abcd", e.DedupKey)
		require.Equal(t, routingKey, e.RoutingKey)
	}
	require.Equal(t, []string{"trigger", "trigger", "resolve"}, []string{events[0].Action, events[1].Action, events[2].Action})
	pl := events[0].Payload
	require.Equal(t, "CrashLoopBackOff: shop/web", pl.Summary)
	require.Equal(t, "error", pl.Severity, "the configured mapping")
	require.Equal(t, "prod", pl.Source)
	require.Equal(t, "Deployment/web", pl.Component)
	require.Equal(t, "shop", pl.Group)
	require.Equal(t, "CrashLoopBackOff", pl.Class)
	require.Equal(t, "Back-off restarting failed container", pl.Details["text"])
	require.Nil(t, events[2].Payload, "a resolve needs no payload")

	alerts := srv.Alerts("ops")
	require.Len(t, alerts, 1)
	require.Equal(t, "resolved", alerts[0].X.Status)
}

// TestSeverityDefaults maps levels as documented, and a thread reply adds
// to its root's alert rather than opening another.
func TestSeverityDefaults(t *testing.T) {
	srv := newFake(t)
	p := newPlatform(t, srv, "")
	ops := chat.Channel{ID: "ops"}
	for _, level := range []chat.Level{chat.LevelError, chat.LevelWarning, chat.LevelInfo, chat.LevelSuccess} {
		_, err := p.Post(t.Context(), ops, chat.Message{Title: string(level), Level: level, Key: "k-" + string(level)})
		require.NoError(t, err)
	}
	root := chat.MessageRef{ID: "k-error"}
	_, err := p.Post(t.Context(), ops, chat.Message{Title: "web recovered", Level: chat.LevelSuccess, Thread: &root})
	require.NoError(t, err)
	var got []string
	for _, e := range srv.Events() {
		got = append(got, e.DedupKey+"="+e.Payload.Severity)
	}
	require.Equal(t, []string{"k-error=critical", "k-warning=warning", "k-info=info", "k-success=info", "k-error=info"}, got)
	require.Len(t, srv.Alerts("ops"), 4)
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	t.Setenv("KEY", routingKey)
	for yaml, want := range map[string]string{
		"url: https://x\n":                                           "settings.routingKeys: name at least one channel id",
		"routingKeys:\n  ops: " + routingKey + "\n":                  "inline secret values are not allowed",
		"routingKeys:\n  ops: ${KEY}\nurl: ftp://x\n":                `settings.url: "ftp://x" is not an http(s) URL`,
		"routingKeys:\n  ops: ${KEY}\nseverity: {fatal: critical}\n": "settings.severity.fatal: unknown level",
		"routingKeys:\n  ops: ${KEY}\nseverity: {error: page}\n":     `settings.severity.error: unknown severity "page"`,
		"routingKeys:\n  ops: ${KEY}\nx: 1\n":                        `unknown field "x"`,
	} {
		raw, err := config.RawFromYAML(yaml)
		if err == nil {
			_, err = New("pd", raw, chat.Deps{})
		}
		require.ErrorContains(t, err, want, yaml)
		require.NotContains(t, err.Error(), routingKey, "the routing key leaked into the error")
	}
}

// TestOutageLosesNothing: while the Events API is down, a queue keeps its
// alerts and delivers them, in order, once it is back.
func TestOutageLosesNothing(t *testing.T) {
	srv := newFake(t)
	p := newPlatform(t, srv, "")
	q := chat.NewQueue(p, "pd", chat.Channel{Name: "pagerduty", ID: "ops"}, chat.QueueOptions{
		PerSecond: 100, Backoff: chat.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Deadline: time.Hour},
	})
	srv.SetDown(true)
	delivered := make(chan string, 10)
	for _, key := range []string{"a", "b", "c"} {
		q.Enqueue(chat.Job{
			Build: func() (chat.Message, bool) { return chat.Message{Title: "alert " + key, Key: key}, true },
			Done: func(_ context.Context, ref chat.MessageRef, err error) {
				require.NoError(t, err)
				delivered <- ref.ID
			},
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// The outage lasts until the queue has retried through it a few times.
	require.Eventually(t, func() bool { return srv.Calls() >= 5 }, time.Minute, time.Millisecond)
	require.Empty(t, srv.Events())
	srv.SetDown(false)
	for _, want := range []string{"a", "b", "c"} {
		require.Equal(t, want, <-delivered)
	}
	require.Len(t, srv.Alerts("ops"), 3)
}
