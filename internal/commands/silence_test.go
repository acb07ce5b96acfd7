package commands

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/source/alertmanager"
	"github.com/kubechat/kubechat/internal/state"
	"github.com/kubechat/kubechat/plugins/alerts"
)

const silenceConfig = `cluster:
  name: dev
  namespace: kubechat
platforms:
  - name: chat
    type: log
channels:
  - name: ops
    platform: chat
    bindings:
      sources: [pods, am]
      executors: [silence-manage, explain]
  - name: viewers
    platform: chat
    bindings:
      sources: [pods]
      executors: [silence-view, explain]
  - name: critical
    platform: chat
    bindings:
      sources: [am]
      matchers: ['severity="critical"']
executors:
  - name: silence-manage
    type: silence
    policy:
      verbs: [list, add, expire]
  - name: silence-view
    type: silence
  - name: explain
    type: explain
sources:
  - name: pods
    type: kubernetes
    kubernetes:
      resources:
        - type: v1/pods
          events: [error]
  - name: am
    type: alertmanager
    alertmanager:
      bearerToken: ${ROUTER_TEST_TOKEN}
inhibit:
  rules:
    - name: workload-alert
      sourceMatchers: ['severity=~"warning|critical"']
      targetMatchers: ['source="pods"']
      equal: [namespace, deployment]
`

// silenced is both flows over silenceConfig, with the silence and explain
// executors, and the state in its own ConfigMap of the real API server.
type silenced struct {
	wired
	cfg  *config.Config
	stop func()
}

// newSilenced builds and starts the pipeline and the handler over a state
// store freshly loaded from the ConfigMap, as an agent (re)starting does.
func newSilenced(t *testing.T, decisions *alerting.Decisions) *silenced {
	t.Helper()
	return newSilencedWith(t, decisions, func(e executor.Executor) executor.Executor { return e })
}

// newSilencedWith is newSilenced with each executor passed through wrap.
func newSilencedWith(t *testing.T, decisions *alerting.Decisions, wrap func(executor.Executor) executor.Executor) *silenced {
	t.Helper()
	newFixture(t) // the namespaces
	t.Setenv("ROUTER_TEST_TOKEN", "am-token")
	cfg, err := config.Parse(config.Known{PlatformTypes: []string{"log"}, ExecutorTypes: []string{"silence", "explain"}, ClusterFreeTypes: []string{"explain", "silence"}},
		config.File{Name: "silence.yaml", Data: []byte(silenceConfig)})
	require.NoError(t, err)
	st := state.New(env.Client, "kubechat", "silence-test-state")
	require.NoError(t, st.Load(t.Context()))
	execs := map[string]executor.Executor{}
	for _, e := range cfg.Executors {
		factory := alerts.NewSilence
		if e.Type == "explain" {
			factory = alerts.NewExplain
		}
		x, err := factory(e.Name, e.Settings, executor.Deps{})
		require.NoError(t, err)
		execs[e.Name] = wrap(x)
	}
	s := &silenced{wired: wired{out: &posts{}, state: st}, cfg: cfg}
	reg, log := prometheus.NewRegistry(), slog.New(slog.DiscardHandler)
	s.alerts, err = alerting.New(cfg, map[string]chat.Platform{"chat": s.out}, alerting.Options{State: st, Decisions: decisions}, reg, log)
	require.NoError(t, err)
	alerts.Attach(execs, s.alerts)
	s.cmds, err = New(cfg, Options{Executors: execs, State: st, Alerts: s.alerts}, reg, log)
	require.NoError(t, err)
	s.alerts.SetActions(s.cmds)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.alerts.Start(ctx) }()
	stopped := false
	s.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			require.NoError(t, <-done)
		}
	}
	t.Cleanup(s.stop)
	return s
}

func podWarning(pod, reason string) event.Event {
	ev := crashLoop(pod)
	ev.Transition, ev.Type, ev.Level, ev.Reason = "", event.Warning, event.Warn, reason
	ev.Message = "warning about " + pod
	return ev
}

// longWait bounds a wait for the pipeline (a hang guard); pollEvery is how
// often it looks.
const longWait, pollEvery = 30 * time.Second, 20 * time.Millisecond

var silenceID = regexp.MustCompile(`Added: ([0-9a-f]{8}) `)

// TestSilences: who may silence is policy; a silenced alert is not posted
// but counted and listed; silences and their counts survive a restart;
// after expiry the next occurrence posts; a resolution still edits an
// alert posted before its silence; the Mute control adds a silence for
// the alert it is under.
func TestSilences(t *testing.T) {
	a := newSilenced(t, nil)
	ctx := context.Background()
	t.Cleanup(func() { _ = a.state.Set(ctx, "silences", "") })

	denied := a.say(t, "viewers", "U1", `silence add name="noisy" --for 2h`)
	require.Equal(t, "Denied by kubechat policy", denied.Title, denied.PlainText())
	require.Contains(t, denied.PlainText(), `allows the verbs list; "add" is not one of them`)
	require.Contains(t, a.say(t, "viewers", "U1", "silence list").PlainText(), "No silences in this channel.")
	require.Contains(t, a.say(t, "ops", "U1", `silence add reason=~".*" --for 1h`).PlainText(), "match every alert")

	// An alert posted before the silence is edited when it resolves.
	a.alerts.Emit(ctx, crashLoop("early"))
	early := a.out.wait(t, "ops", func(p posted) bool { return strings.Contains(p.m.Title, "early is failing") })

	added := a.say(t, "ops", "U1", `silence add name=~"noisy|early" namespace="apps" --for 2h --comment "flaky test pod"`)
	m := silenceID.FindStringSubmatch(added.PlainText())
	require.NotNil(t, m, added.PlainText())
	id := m[1]

	a.alerts.Emit(ctx, podWarning("noisy", "BackOff"))
	resolved := crashLoop("early")
	resolved.Transition, resolved.Type = event.Resolved, event.Update
	a.alerts.Emit(ctx, resolved)
	a.out.wait(t, "ops", func(p posted) bool { return p.ref.ID == early.ref.ID && strings.HasPrefix(p.m.Title, "Resolved:") })
	a.alerts.Emit(ctx, podWarning("sentinel", "BackOff"))
	a.out.wait(t, "ops", func(p posted) bool { return strings.Contains(p.m.Title, "sentinel") })
	for _, p := range a.out.all() {
		require.False(t, p.to == "ops" && strings.Contains(p.m.Title, "noisy"), "a silenced alert is not posted: %s", p.m.Title)
	}
	a.out.wait(t, "viewers", func(p posted) bool { return strings.Contains(p.m.Title, "noisy") }) // silences are per channel

	list := a.say(t, "ops", "U1", "silence list").PlainText()
	require.Contains(t, list, id+`  {name=~"noisy|early", namespace="apps"}`)
	require.Contains(t, list, "by U1, 1 alert(s) muted: flaky test pod")
	require.Contains(t, list, "Pod apps/noisy warning (BackOff)")

	// A restart: the silence and its count come back from the ConfigMap.
	a.stop()
	a = newSilenced(t, nil)
	require.Contains(t, a.say(t, "ops", "U1", "silence list").PlainText(), id+`  {name=~"noisy|early", namespace="apps"}`)
	require.Contains(t, a.say(t, "ops", "U1", "silence list").PlainText(), "1 alert(s) muted")
	a.alerts.Emit(ctx, podWarning("noisy", "Unhealthy"))
	require.Eventually(t, func() bool {
		return strings.Contains(a.say(t, "ops", "U1", "silence list").PlainText(), "2 alert(s) muted")
	}, longWait, pollEvery)

	require.Contains(t, a.say(t, "viewers", "U1", "silence expire "+id).PlainText(), `allows the verbs list; "expire" is not one of them`)
	require.Contains(t, a.say(t, "ops", "U1", "silence expire "+id).PlainText(), "Expired: "+id)
	require.Contains(t, a.say(t, "ops", "U1", "silence expire "+id).PlainText(), "has already ended")
	a.alerts.Emit(ctx, podWarning("noisy", "Failed"))
	a.out.wait(t, "ops", func(p posted) bool {
		return strings.Contains(p.m.Title, "noisy") && strings.Contains(p.m.Title, "Failed")
	})

	// The Mute control: where the channel may add silences, and only there.
	a.alerts.Emit(ctx, crashLoop("muted"))
	alert := a.out.wait(t, "ops", func(p posted) bool { return strings.Contains(p.m.Title, "muted is failing") })
	sel := findSelect(alert.m)
	require.NotNil(t, sel, "a failure alert carries the Mute control")
	require.Len(t, sel.Options, 4)
	viewersAlert := a.out.wait(t, "viewers", func(p posted) bool { return strings.Contains(p.m.Title, "muted is failing") })
	require.Nil(t, findSelect(viewersAlert.m), "no Mute where the channel may not silence")
	reply := a.cmds.Handle(ctx, chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "ops", ID: "ops"}, UserID: "U2",
		ButtonID: sel.ID, Value: "resolved", Thread: chat.MessageRef{ID: "T1"}})
	require.Contains(t, reply.PlainText(), `{cluster="dev", source="pods", kind="Pod", namespace="apps", name="muted"}  until the alert resolves, by U2`)
	again := a.cmds.Handle(ctx, chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "ops", ID: "ops"}, UserID: "U2",
		ButtonID: sel.ID, Value: "1h", Thread: chat.MessageRef{ID: "T1"}})
	require.Equal(t, "Button refused", again.Title, "the control works once")
	// Until resolved: the resolution edits the alert and ends the silence.
	res := crashLoop("muted")
	res.Transition, res.Type = event.Resolved, event.Update
	a.alerts.Emit(ctx, res)
	a.out.wait(t, "ops", func(p posted) bool { return p.ref.ID == alert.ref.ID && strings.HasPrefix(p.m.Title, "Resolved:") })
	require.Eventually(t, func() bool {
		return strings.Contains(a.say(t, "ops", "U1", "silence list").PlainText(), `name="muted"}  expired`)
	}, longWait, pollEvery)
}

// TestExplain: explain names the rule that filtered an event in one
// channel, the channel that received it, and the silence that muted another.
func TestExplain(t *testing.T) {
	a := newSilenced(t, alerting.NewDecisions(10))
	ctx := context.Background()
	t.Cleanup(func() { _ = a.state.Set(ctx, "silences", "") })
	ev := event.Event{Source: "am", Cluster: "dev", Type: event.Error, Level: event.Warn, Transition: event.Failing, Group: "g1",
		Reason: "HighLatency", Object: event.Object{Kind: "Alert", Namespace: "apps", Name: "HighLatency"},
		Labels: map[string]string{"alertname": "HighLatency", "severity": "warning", "namespace": "apps"}}
	a.alerts.Emit(ctx, ev)
	a.out.wait(t, "ops", func(p posted) bool { return strings.Contains(p.m.Title, "HighLatency") })
	var out string
	require.Eventually(t, func() bool {
		out = a.say(t, "ops", "U1", "explain alert/HighLatency -n apps").PlainText()
		return strings.Contains(out, "chat/ops: posted: bound to source \"am\" (channels[0])")
	}, longWait, pollEvery, "explain names the channel that received it")
	require.Contains(t, out, `chat/critical: filtered: channels[2].bindings.matchers: severity="critical"`)

	require.Contains(t, a.say(t, "ops", "U1", `silence add name="quiet" --for 1h`).PlainText(), "Added")
	a.alerts.Emit(ctx, podWarning("quiet", "BackOff"))
	out = a.say(t, "ops", "U1", "explain pod/quiet -n apps").PlainText()
	require.Regexp(t, `chat/ops: silenced: silence [0-9a-f]{8} \(name="quiet"\) by U1`, out)
	require.Regexp(t, `chat/viewers: (queued|posted): bound to source "pods" \(channels\[1\]\)`, out)
	require.Contains(t, a.say(t, "ops", "U1", "explain pod/other -n apps").PlainText(), "No recent event about pod/other in namespace apps")
	require.Contains(t, a.say(t, "ops", "U1", "explain pod").PlainText(), "is not KIND/NAME")
}

// notify turns an Alertmanager webhook notification into the am source's
// event, as the source's receiver does, and emits it.
func (s *silenced) notify(t *testing.T, status, groupKey string, labels map[string]string) {
	t.Helper()
	src, err := alertmanager.New(s.cfg.Sources[1], "dev", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	body, err := json.Marshal(alertmanager.Payload{Version: "4", GroupKey: groupKey, Status: status, Receiver: "kubechat",
		GroupLabels: labels, CommonLabels: labels, Alerts: []alertmanager.Alert{{Status: status, Labels: labels,
			StartsAt: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC), Fingerprint: "f1"}}})
	require.NoError(t, err)
	p, err := alertmanager.Decode(body)
	require.NoError(t, err)
	s.alerts.Emit(t.Context(), src.Event(p))
}

// TestInhibition: while an Alertmanager alert about a deployment fires,
// the Kubernetes alerts about its pods are not posted (in any channel),
// and explain names the rule and the alert; what fires survives a
// restart; a resolution still edits an alert posted before; once the
// Alertmanager alert resolves, the next occurrence posts.
func TestInhibition(t *testing.T) {
	a := newSilenced(t, alerting.NewDecisions(50))
	ctx := context.Background()
	t.Cleanup(func() { _ = a.state.Set(ctx, "inhibit.firing", "") })
	web := map[string]string{"alertname": "KubeDeploymentReplicasMismatch", "severity": "warning", "namespace": "apps", "deployment": "web"}
	const group = `{}/{}:{alertname="KubeDeploymentReplicasMismatch", deployment="web"}`

	// Posted before the Alertmanager alert fires: its resolution must edit it.
	a.alerts.Emit(ctx, crashLoop("web-7d4b9c6f8-early"))
	early := a.out.wait(t, "viewers", func(p posted) bool { return strings.Contains(p.m.Title, "web-7d4b9c6f8-early is failing") })

	a.notify(t, "firing", group, web)
	a.out.wait(t, "ops", func(p posted) bool { return strings.Contains(p.m.Title, "KubeDeploymentReplicasMismatch") })
	a.alerts.Emit(ctx, crashLoop("web-7d4b9c6f8-x2x9z"))
	res := crashLoop("web-7d4b9c6f8-early")
	res.Transition, res.Type = event.Resolved, event.Update
	a.alerts.Emit(ctx, res)
	a.out.wait(t, "viewers", func(p posted) bool { return p.ref.ID == early.ref.ID && strings.HasPrefix(p.m.Title, "Resolved:") })
	a.alerts.Emit(ctx, crashLoop("api-5f6d7c8b9-sntnl")) // another deployment: a sentinel
	for _, ch := range []string{"ops", "viewers"} {
		a.out.wait(t, ch, func(p posted) bool { return strings.Contains(p.m.Title, "api-5f6d7c8b9-sntnl") })
	}
	for _, p := range a.out.all() {
		require.NotContains(t, p.m.Title, "x2x9z", "an inhibited alert is not posted, nor threaded (in %s)", p.to)
	}
	out := a.say(t, "ops", "U1", "explain pod/web-7d4b9c6f8-x2x9z -n apps").PlainText()
	for _, ch := range []string{"ops", "viewers"} {
		require.Contains(t, out, "chat/"+ch+`: inhibited: inhibit rule workload-alert: Alertmanager alert {alertname="KubeDeploymentReplicasMismatch", namespace="apps", deployment="web"} (source "am")`)
	}

	// A restart: what fires comes back from the state.
	a.stop()
	a = newSilenced(t, alerting.NewDecisions(50))
	a.alerts.Emit(ctx, crashLoop("web-7d4b9c6f8-after"))
	a.alerts.Emit(ctx, crashLoop("api-5f6d7c8b9-sntnl2"))
	a.out.wait(t, "viewers", func(p posted) bool { return strings.Contains(p.m.Title, "api-5f6d7c8b9-sntnl2") })
	for _, p := range a.out.all() {
		require.NotContains(t, p.m.Title, "web-7d4b9c6f8-after", "still inhibited after a restart")
	}
	require.Contains(t, a.say(t, "ops", "U1", "explain pod/web-7d4b9c6f8-after -n apps").PlainText(), "inhibited: inhibit rule workload-alert")

	// The Alertmanager alert resolves: the next occurrence posts.
	a.notify(t, "resolved", group, web)
	a.alerts.Emit(ctx, crashLoop("web-7d4b9c6f8-x2x9z"))
	a.out.wait(t, "viewers", func(p posted) bool { return strings.Contains(p.m.Title, "web-7d4b9c6f8-x2x9z is failing") })
}

// TestNoIdentityNeeded: the channels of silenceConfig have no Kubernetes
// identity, yet run silence and explain (which never reach the cluster),
// still under their policy; an executor that does not declare itself
// cluster-free is refused there, as before.
func TestNoIdentityNeeded(t *testing.T) {
	a := newSilenced(t, nil)
	ctx := context.Background()
	t.Cleanup(func() { _ = a.state.Set(ctx, "silences", "") })
	list := a.say(t, "viewers", "U1", "silence list")
	require.Contains(t, list.PlainText(), "No silences in this channel.")
	require.Contains(t, list.Context, "no cluster access")
	require.Contains(t, a.say(t, "viewers", "U1", "explain pod/nothing -n apps").PlainText(), "No recent event about pod/nothing in namespace apps")
	denied := a.say(t, "viewers", "U1", `silence add name="noisy" --for 2h`)
	require.Equal(t, "Denied by kubechat policy", denied.Title, denied.PlainText())
	require.Contains(t, denied.PlainText(), `allows the verbs list; "add" is not one of them`)
	require.Contains(t, a.say(t, "ops", "U1", `silence add name="noisy" --for 2h`).PlainText(), "Added")
	a.stop()

	// The same executors, but hiding what they declare: fail closed.
	type undeclared struct{ executor.Executor }
	b := newSilencedWith(t, nil, func(e executor.Executor) executor.Executor { return undeclared{e} })
	for _, text := range []string{"silence list", "explain pod/nothing -n apps"} {
		refused := b.say(t, "ops", "U1", text)
		require.Equal(t, "Denied by kubechat policy", refused.Title, refused.PlainText())
		require.Contains(t, refused.PlainText(), `channel "ops" has no Kubernetes identity to run commands as`)
	}
}

func findSelect(m chat.Message) *chat.Select {
	for _, s := range m.Sections {
		for i := range s.Selects {
			return &s.Selects[i]
		}
	}
	return nil
}
