package commands

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/button"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/kubectl"
)

// posts is a chat.Platform that keeps every message it is sent, with a
// fresh ref for each new one.
type posts struct {
	mu   sync.Mutex
	seq  int
	msgs []posted
}

type posted struct {
	to  string
	ref chat.MessageRef
	m   chat.Message
}

func (p *posts) Name() string { return "chat" }
func (p *posts) Post(_ context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ref := chat.MessageRef{Platform: "chat", Channel: to.ID}
	if m.Replace != nil {
		ref = *m.Replace
	} else {
		p.seq++
		ref.ID = fmt.Sprint(p.seq)
		if m.Thread != nil {
			ref.Thread = m.Thread.Root()
		}
	}
	p.msgs = append(p.msgs, posted{to: to.ID, ref: ref, m: m})
	return ref, nil
}
func (p *posts) Listen(ctx context.Context, _ chat.Handler) error { <-ctx.Done(); return nil }

func (p *posts) all() []posted {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]posted(nil), p.msgs...)
}

// wait returns the first message to channel that ok accepts, waiting up to 30 s.
func (p *posts) wait(t *testing.T, channel string, ok func(posted) bool) posted {
	t.Helper()
	var found posted
	require.Eventually(t, func() bool {
		for _, m := range p.all() {
			if m.to == channel && ok(m) {
				found = m
				return true
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "no such message in %s", channel)
	return found
}

const alertingConfig = `cluster:
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
      executors: [kubectl-read]
      actions: [get-pod, dry]
    identity:
      serviceAccount: apps/reader
  - name: critical
    platform: chat
    bindings:
      sources: [am]
      matchers: ['severity="critical"']
  - name: shared
    platform: chat
    defaultCluster: prod
    bindings:
      executors: [kubectl-read]
    identity:
      serviceAccount: apps/reader
executors:
  - name: kubectl-read
    type: kubectl
    policy:
      namespaces: [apps]
      defaultNamespace: apps
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
actions:
  - name: get-pod
    source: pods
    reasons: [CrashLoopBackOff]
    command: kubectl get pod {name} -n {namespace}
  - name: dry
    source: pods
    reasons: [Unschedulable]
    command: kubectl get pods
users:
  - platform: chat
    id: U-ADMIN
    admin: true
`

// wired is both flows over alertingConfig, as the app wires them: the
// alerting pipeline, whose alerts run actions through the command handler.
type wired struct {
	alerts *alerting.Pipeline
	cmds   *Handler
	state  chat.StateStore
	out    *posts
}

// newAlerting builds both over alertingConfig with the real kubectl
// executor and the state ConfigMap, and runs the pipeline until the test ends.
func newAlerting(t *testing.T) *wired {
	t.Helper()
	f := newFixture(t) // the namespaces, the web pod and the reader's RBAC
	cfg, err := config.Parse(config.Known{PlatformTypes: []string{"log"}, ExecutorTypes: []string{"kubectl"}},
		config.File{Name: "alerting.yaml", Data: []byte(alertingConfig)})
	require.NoError(t, err)
	k, err := kubectl.New("kubectl-read", cfg.Executors[0].Settings, executor.Deps{RESTConfig: env.Config})
	require.NoError(t, err)
	a := &wired{out: &posts{}, state: f.state}
	reg, log := prometheus.NewRegistry(), slog.New(slog.DiscardHandler)
	a.alerts, err = alerting.New(cfg, map[string]chat.Platform{"chat": a.out}, alerting.Options{State: f.state}, reg, log)
	require.NoError(t, err)
	a.cmds, err = New(cfg, Options{Executors: map[string]executor.Executor{"kubectl-read": k}, State: f.state, Alerts: a.alerts}, reg, log)
	require.NoError(t, err)
	a.alerts.SetActions(a.cmds)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.alerts.Start(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return a
}

func (a *wired) say(t *testing.T, channel, user, text string) chat.Message {
	t.Helper()
	return a.cmds.Handle(t.Context(), chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: channel, ID: channel}, UserID: user, Text: text,
		Thread: chat.MessageRef{ID: "T1"}})
}

func crashLoop(pod string) event.Event {
	return event.Event{Source: "pods", Cluster: "dev", Type: event.Error, Level: event.Critical, Transition: event.Failing,
		Reason: "CrashLoopBackOff", Object: event.Object{APIVersion: "v1", Kind: "Pod", Namespace: "apps", Name: pod}, Time: time.Now()}
}

// TestActionOutputGoesIntoTheAlertThread: an action runs its command as the
// channel (policy, identity) once the alert is delivered, and its output is
// a reply in the alert's thread. Admins switch it off and on from chat.
func TestActionOutputGoesIntoTheAlertThread(t *testing.T) {
	a := newAlerting(t)
	pod, err := env.WaitForPod(t.Context(), "apps", "app=web", testenv.PodReady)
	require.NoError(t, err)
	defer func() { _ = a.state.Set(context.Background(), switchKey("get-pod"), "") }()

	a.alerts.Emit(t.Context(), crashLoop(pod.Name))
	alert := a.out.wait(t, "ops", func(p posted) bool { return strings.Contains(p.m.Title, "is failing (CrashLoopBackOff)") })
	out := a.out.wait(t, "ops", func(p posted) bool { return strings.HasPrefix(p.m.Title, "Action get-pod: ") })
	require.Equal(t, "Action get-pod: kubectl get pod "+pod.Name+" -n apps", out.m.Title)
	require.Equal(t, alert.ref.ID, out.ref.Thread, "the output is a reply in the alert's thread")
	require.Contains(t, out.m.PlainText(), pod.Name)
	require.Contains(t, out.m.Context, "as system:serviceaccount:apps:reader", "run as the channel's identity")
	require.Contains(t, a.say(t, "ops", "U1", "list actions").PlainText(), "get-pod: on pods run \"kubectl get pod {name} -n {namespace}\" (enabled)")

	require.Contains(t, a.say(t, "ops", "U1", "actions disable get-pod").PlainText(), "admin command")
	require.Equal(t, "Action get-pod is now disabled", a.say(t, "ops", "U-ADMIN", "actions disable get-pod").Title)
	require.Contains(t, a.say(t, "ops", "U1", "list actions").PlainText(), "(disabled)")
	require.Contains(t, a.say(t, "ops", "U-ADMIN", "actions disable nope").PlainText(), `unknown action "nope" (known: get-pod, dry)`)
	a.alerts.Emit(t.Context(), crashLoop("other-pod"))
	a.out.wait(t, "ops", func(p posted) bool { return strings.Contains(p.m.Title, "other-pod is failing") })
	require.Equal(t, "Action get-pod is now enabled", a.say(t, "ops", "U-ADMIN", "actions enable get-pod").Title)
	a.alerts.Emit(t.Context(), crashLoop("third-pod"))
	a.out.wait(t, "ops", func(p posted) bool { return strings.Contains(p.m.Title, "get pod third-pod") })
	for _, p := range a.out.all() {
		require.NotContains(t, p.m.Title, "get pod other-pod", "a disabled action runs nothing")
	}
}

// TestActionRefusesHostileEventValues: an event value that would read as a
// flag is refused, and the reason posted instead of output.
func TestActionRefusesHostileEventValues(t *testing.T) {
	a := newAlerting(t)
	a.alerts.Emit(t.Context(), crashLoop("--kubeconfig=/etc/passwd"))
	out := a.out.wait(t, "ops", func(p posted) bool { return strings.HasPrefix(p.m.Title, "Action get-pod") })
	require.Equal(t, "Action get-pod did not run", out.m.Title)
	require.Contains(t, out.m.PlainText(), "would read as a flag")
}

func amGroup(status string, firing int, labels map[string]string) event.Event {
	ev := event.Event{Source: "am", Cluster: "dev", Type: event.Error, Level: event.Warn, Reason: "HighErrorRate",
		Object: event.Object{APIVersion: "alertmanager/v4", Kind: "Alert", Namespace: labels["namespace"], Name: "HighErrorRate"},
		Labels: labels, Group: "{}:{alertname=\"HighErrorRate\",g=\"" + labels["g"] + "\"}", Time: time.Now()}
	if status == "resolved" {
		ev.Transition = event.Resolved
		return ev
	}
	ev.Transition, ev.Headline = event.Failing, fmt.Sprintf("[FIRING:%d] HighErrorRate", firing)
	return ev
}

// TestAlertGroupIsOneMessage: a group's notifications edit one message;
// label matchers choose the channels; while the group is open, Kubernetes
// alerts about the workload it names go into its thread.
func TestAlertGroupIsOneMessage(t *testing.T) {
	a := newAlerting(t)
	labels := map[string]string{"g": "1", "namespace": "apps", "deployment": "web", "severity": "warning"}
	a.alerts.Emit(t.Context(), amGroup("firing", 1, labels))
	first := a.out.wait(t, "ops", func(p posted) bool { return p.m.Title == "[FIRING:1] HighErrorRate" })
	a.alerts.Emit(t.Context(), amGroup("firing", 2, labels))
	edit := a.out.wait(t, "ops", func(p posted) bool { return p.m.Title == "[FIRING:2] HighErrorRate" })
	require.NotNil(t, edit.m.Replace, "a changed group edits its message")
	require.Equal(t, first.ref.ID, edit.m.Replace.ID)

	// A pod of the deployment the alert names goes into the alert's thread.
	a.alerts.Emit(t.Context(), crashLoop("web-5d8f7c9b4-x2x9z"))
	corr := a.out.wait(t, "ops", func(p posted) bool { return strings.Contains(p.m.Title, "web-5d8f7c9b4-x2x9z is failing") })
	require.NotNil(t, corr.m.Thread)
	require.Equal(t, first.ref.ID, corr.m.Thread.ID)

	// A restarted agent (a new pipeline over the same state) keeps threading.
	b := newAlerting(t)
	b.alerts.Emit(t.Context(), crashLoop("web-5d8f7c9b4-zzzzz"))
	after := b.out.wait(t, "ops", func(p posted) bool { return strings.Contains(p.m.Title, "web-5d8f7c9b4-zzzzz is failing") })
	require.NotNil(t, after.m.Thread, "the open alert's thread survives a restart")
	require.Equal(t, first.ref.ID, after.m.Thread.ID)

	a.alerts.Emit(t.Context(), amGroup("resolved", 0, labels))
	res := a.out.wait(t, "ops", func(p posted) bool { return strings.HasPrefix(p.m.Title, "Resolved: ") })
	require.Equal(t, first.ref.ID, res.m.Replace.ID)

	// Critical alerts reach the channel whose matchers ask for them; warnings do not.
	crit := map[string]string{"g": "2", "namespace": "apps", "severity": "critical"}
	a.alerts.Emit(t.Context(), amGroup("firing", 1, crit))
	a.out.wait(t, "critical", func(p posted) bool { return p.m.Title == "[FIRING:1] HighErrorRate" })
	a.alerts.Emit(t.Context(), amGroup("resolved", 0, crit))
	a.out.wait(t, "critical", func(p posted) bool { return strings.HasPrefix(p.m.Title, "Resolved: ") })
	var inCritical int
	for _, p := range a.out.all() {
		if p.to == "critical" {
			inCritical++
		}
	}
	require.Equal(t, 2, inCritical, "the critical alert and its resolution only")

	// After the group resolved, the pod's alerts are messages of their own again.
	a.alerts.Emit(t.Context(), crashLoop("web-5d8f7c9b4-abcde"))
	own := a.out.wait(t, "ops", func(p posted) bool { return strings.Contains(p.m.Title, "web-5d8f7c9b4-abcde is failing") })
	require.Nil(t, own.m.Thread)
}

// TestClusterTargeting: in a channel whose default cluster is prod, the dev
// agent answers only --cluster dev and ping; it ignores other clusters'
// buttons without a word.
func TestClusterTargeting(t *testing.T) {
	a := newAlerting(t)
	require.Equal(t, chat.Message{}, a.say(t, "shared", "U1", "kubectl get pods"), "the default cluster answers")
	require.Equal(t, chat.Message{}, a.say(t, "shared", "U1", "--cluster prod kubectl get pods"))
	m := a.say(t, "shared", "U1", "--cluster dev kubectl get pods")
	require.Equal(t, "kubectl get pods", m.Title)
	require.Contains(t, m.Context, "cluster: dev")
	require.Contains(t, a.say(t, "shared", "U1", "ping").Title, "pong from cluster dev", "every agent answers ping")
	require.Equal(t, chat.Message{}, a.say(t, "shared", "U1", "--cluster prod ping"))
	require.Equal(t, "kubectl get pods", a.say(t, "ops", "U1", "kubectl get pods").Title, "no default cluster: the agent that hears it answers")

	run := m.Sections[len(m.Sections)-1].Buttons[0].ID
	require.True(t, strings.HasPrefix(run, button.Tag("dev")+"."), "button ids name their cluster: %s", run)
	require.LessOrEqual(t, len(run), 100, "within Discord's custom_id limit")
	click := func(id string) chat.Message {
		return a.cmds.Handle(t.Context(), chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "shared", ID: "shared"}, UserID: "U1", ButtonID: id})
	}
	require.Equal(t, chat.Message{}, click(button.Tag("prod")+"."+strings.TrimPrefix(run, button.Tag("dev")+".")), "another agent's button is not ours to answer")
	require.Contains(t, click("garbage").PlainText(), "this button is not valid")
	require.Equal(t, "kubectl get pods", click(run).Title, "our own button works without --cluster")
}
