package commands

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/github/githubtest"
	"github.com/kubechat/kubechat/internal/state"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/github"
)

// issueConfig: two channels may open issues, viewers may not.
const issueConfig = `cluster:
  name: dev
  namespace: kubechat
platforms:
  - name: chat
    type: log
channels:
  - name: ops
    platform: chat
    bindings:
      sources: [pods]
      executors: [issues]
    identity:
      serviceAccount: apps/reader
  - name: sre
    platform: chat
    bindings:
      sources: [pods]
      executors: [issues]
    identity:
      serviceAccount: apps/reader
  - name: viewers
    platform: chat
    bindings:
      sources: [pods]
      executors: [issues-view]
    identity:
      serviceAccount: apps/reader
executors:
  - name: issues
    type: github
    settings:
      repository: acme/ops
      labels: [kubechat]
      api:
        baseURL: %[1]s
        token: ${ISSUES_TEST_TOKEN}
    policy:
      verbs: [issue create]
      namespaces: [apps]
      defaultNamespace: apps
  - name: issues-view
    type: github
    settings:
      repository: acme/ops
      api:
        baseURL: %[1]s
        token: ${ISSUES_TEST_TOKEN}
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
`

// findButton is m's first button that ok accepts, or nil.
func findButton(m chat.Message, ok func(chat.Button) bool) *chat.Button {
	for _, s := range m.Sections {
		for _, b := range s.Buttons {
			if ok(b) {
				return &b
			}
		}
	}
	return nil
}

func labelled(label string) func(chat.Button) bool {
	return func(b chat.Button) bool { return b.Label == label }
}

// TestOpenIssueButton: "Open issue" is under a failure alert only where
// the channel's policy allows "issue create"; a click opens one issue,
// masked, and replies with its link in the alert's thread; the button
// works once, and the same alert's button in another channel returns the
// issue already open; a channel without the verb is refused.
func TestOpenIssueButton(t *testing.T) {
	newFixture(t) // the namespaces, the web pod, the db Secret, the reader's RBAC
	ctx := t.Context()
	gh := githubtest.New(t, "issues-token")
	t.Setenv("ISSUES_TEST_TOKEN", "issues-token")
	cfg, err := config.Parse(config.Known{PlatformTypes: []string{"log"}, ExecutorTypes: []string{"github"}},
		config.File{Name: "issues.yaml", Data: fmt.Appendf(nil, issueConfig, gh.APIURL())})
	require.NoError(t, err)
	execs := map[string]executor.Executor{}
	for _, e := range cfg.Executors {
		execs[e.Name], err = github.New(e.Name, e.Settings, executor.Deps{RESTConfig: env.Config, Cluster: "dev"})
		require.NoError(t, err)
	}
	st := state.New(env.Client, "kubechat", "issue-test-state")
	require.NoError(t, st.Load(ctx))
	a := &wired{out: &posts{}, state: st}
	reg, log := prometheus.NewRegistry(), slog.New(slog.DiscardHandler)
	a.alerts, err = alerting.New(cfg, map[string]chat.Platform{"chat": a.out}, alerting.Options{State: st}, reg, log)
	require.NoError(t, err)
	a.cmds, err = New(cfg, Options{Executors: execs, State: st, Alerts: a.alerts}, reg, log)
	require.NoError(t, err)
	a.alerts.SetActions(a.cmds)
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.alerts.Start(actx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	pod, err := env.WaitForPod(ctx, "apps", "app=web", testenv.PodReady)
	require.NoError(t, err)
	const secret = "correct-horse-battery" // the db Secret's value
	require.NoError(t, env.SetPodLogs(ctx, "apps", pod.Name, pod.Spec.Containers[0].Name, "dial db with "+secret+": refused\n", ""))

	a.alerts.Emit(ctx, crashLoop(pod.Name))
	failing := func(p posted) bool { return strings.Contains(p.m.Title, pod.Name+" is failing") }
	alerts := map[string]posted{}
	for _, ch := range []string{"ops", "sre", "viewers"} {
		alerts[ch] = a.out.wait(t, ch, failing)
	}
	require.Nil(t, findButton(alerts["viewers"].m, labelled("Open issue")), "no Open issue where the policy does not allow it")
	denied := a.say(t, "viewers", "U1", "github issue create pod/"+pod.Name+" -n apps")
	require.Equal(t, "Denied by kubechat policy", denied.Title, denied.PlainText())
	require.Contains(t, denied.PlainText(), `"issue create" is not one of them`)
	require.Empty(t, gh.Issues())

	click := func(ch string) chat.Message {
		b := findButton(alerts[ch].m, labelled("Open issue"))
		require.NotNil(t, b, "Open issue under the alert in %s", ch)
		return a.cmds.Handle(ctx, chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: ch, ID: ch}, UserID: "U2", UserName: "bob",
			ButtonID: b.ID, Thread: alerts[ch].ref})
	}
	reply := click("ops")
	issues := gh.Issues()
	require.Len(t, issues, 1, reply.PlainText())
	is := issues[0]
	url := fmt.Sprintf("%s/acme/ops/issues/%d", gh.URL, is.Number)
	require.Contains(t, reply.PlainText(), "Opened issue #1 in acme/ops: "+url)
	require.Equal(t, alerts["ops"].ref, *reply.Thread, "the reply goes into the alert's thread")
	require.NotNil(t, findButton(reply, func(b chat.Button) bool { return b.URL == url }), "a link to the issue")
	require.Equal(t, "[dev] Pod apps/"+pod.Name+" is failing (CrashLoopBackOff)", is.Title)
	require.Equal(t, []string{"kubechat"}, is.Labels)
	for _, want := range []string{"## kubectl describe", "Name:             " + pod.Name,
		"dial db with ***: refused", "channel `ops` on `chat`", "asked by `bob`"} {
		require.Contains(t, is.Body, want)
	}
	require.NotContains(t, is.Body+is.Title+reply.PlainText(), secret)

	again := click("ops")
	require.Equal(t, "Button refused", again.Title, "the button works once")
	other := click("sre")
	require.Contains(t, other.PlainText(), "is already open: #1 in acme/ops: "+url)
	require.Len(t, gh.Issues(), 1, "one issue for the alert")
}
