package commands

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/llm/llmtest"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/ai"
	"github.com/kubechat/kubechat/plugins/kubectl"
)

const askConfig = `cluster:
  name: dev
  namespace: kubechat
platforms:
  - name: chat
    type: log
channels:
  - name: ai
    platform: chat
    bindings:
      executors: [ask, kubectl-read]
    identity:
      serviceAccount: apps/reader
  - name: nologs
    platform: chat
    bindings:
      executors: [ask, kubectl-nologs]
    identity:
      serviceAccount: apps/reader
executors:
  - name: ask
    type: ai
    settings:
      provider:
        baseURL: %q
        model: test-model
        apiKey: ${AI_TEST_KEY}
        retries: 2
      budgets:
        toolCalls: 3
      privacy:
        sendLogs: true
        neverSend: [kube-system]
        mask: ['acct-[0-9]{8}']
  - name: kubectl-read
    type: kubectl
    policy:
      namespaces: [apps, kube-system]
      defaultNamespace: apps
  - name: kubectl-nologs
    type: kubectl
    policy:
      verbs: [get, describe]
      namespaces: [apps]
      defaultNamespace: apps
`

// secretValue is the value of the "db" Secret the fixture creates; the
// pod's logs print it.
const secretValue = "correct-horse-battery"

type askFixture struct {
	h   *Handler
	llm *llmtest.Server
	pod string
}

func newAskFixture(t *testing.T) *askFixture {
	t.Helper()
	newFixture(t) // the namespace, the web pod, the db Secret and the reader's RoleBinding
	ctx := t.Context()
	pod, err := env.WaitForPod(ctx, "apps", "app=web", testenv.PodReady)
	require.NoError(t, err)
	require.NoError(t, env.SetPodLogs(ctx, "apps", pod.Name, pod.Spec.Containers[0].Name,
		"starting web\nconnecting as bob@example.com with password "+secretValue+" for acct-12345678\nerror: password authentication failed\n", ""))
	f := &askFixture{llm: llmtest.New(t), pod: pod.Name}
	f.llm.Key = "sk-test-key"
	t.Setenv("AI_TEST_KEY", "sk-test-key")
	cfg, err := config.Parse(config.Known{PlatformTypes: []string{"log"}, ExecutorTypes: []string{"kubectl", "ai"}},
		config.File{Name: "ask.yaml", Data: []byte(fmt.Sprintf(askConfig, f.llm.BaseURL()))})
	require.NoError(t, err)
	execs := map[string]executor.Executor{}
	for _, e := range cfg.Executors {
		deps := executor.Deps{RESTConfig: env.Config, Cluster: "dev"}
		var x executor.Executor
		if e.Type == "ai" {
			x, err = ai.New(e.Name, e.Settings, deps)
		} else {
			x, err = kubectl.New(e.Name, e.Settings, deps)
		}
		require.NoError(t, err)
		execs[e.Name] = x
	}
	f.h, err = New(cfg, Options{Executors: execs}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return f
}

func (f *askFixture) ask(t *testing.T, channel, text string, thread chat.MessageRef) chat.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	return f.h.Handle(ctx, chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: channel, ID: channel}, UserID: "U1", Text: text, Thread: thread})
}

// toolResults are the tool messages of a request, in order.
func toolResults(req llmtest.Request) []string {
	var out []string
	for _, m := range req.Messages {
		if m.Role == "tool" {
			out = append(out, m.Text())
		}
	}
	return out
}

// requireNoSecret checks that no request body holds the Secret's value, in
// any form that would give it away.
func requireNoSecret(t *testing.T, reqs []llmtest.Request) {
	t.Helper()
	for i, r := range reqs {
		for _, form := range []string{secretValue, base64.StdEncoding.EncodeToString([]byte(secretValue)), "bob@example.com", "acct-12345678"} {
			require.NotContains(t, r.Body, form, "request %d sent %q", i, form)
		}
	}
}

// TestAskDescribeAndLogs: the model calls describe and logs, each runs as a
// typed command would (the channel's identity), gets masked results, and
// answers; its suggested command is a Run button that the policy checks
// when clicked.
func TestAskDescribeAndLogs(t *testing.T) {
	f := newAskFixture(t)
	f.llm.Push(
		llmtest.Reply{ToolCalls: []llmtest.Call{
			{Name: "kubectl_describe", Arguments: fmt.Sprintf(`{"resource":"pods","name":%q,"namespace":"apps"}`, f.pod)},
			{Name: "kubectl_logs", Arguments: fmt.Sprintf(`{"pod":%q,"namespace":"apps","tail":20}`, f.pod)},
		}, PromptTokens: 100, CompletionTokens: 20},
		llmtest.Reply{Text: "The database rejects web's password.\n\nRestart it once the Secret is fixed:\n`kubectl rollout restart deployment/web -n apps`",
			PromptTokens: 300, CompletionTokens: 40},
	)
	m := f.ask(t, "ai", "ask why is web failing? it's urgent; really", chat.MessageRef{ID: "Q1"})
	require.Equal(t, "AI: why is web failing? it's urgent; really", m.Title, "the question is prose: quotes and ; are kept")
	require.Contains(t, m.PlainText(), "The database rejects web's password.")
	require.Contains(t, m.Context, "2 tool calls as system:serviceaccount:apps:reader")
	require.Contains(t, m.Context, "460 tokens")

	reqs := f.llm.Requests()
	require.Len(t, reqs, 2)
	require.Equal(t, "Bearer sk-test-key", reqs[0].Header.Get("Authorization"))
	require.ElementsMatch(t, []string{"kubectl_get", "kubectl_describe", "kubectl_logs", "kubectl_events", "kubectl_top"}, reqs[0].Tools,
		"only the tools of the channel's executors: no helm, flux or argocd")
	results := toolResults(reqs[1])
	require.Len(t, results, 2)
	require.Contains(t, results[0], "Name:")
	require.Contains(t, results[0], f.pod)
	require.Contains(t, results[1], "error: password authentication failed")
	require.Contains(t, results[1], "with password ***", "the Secret's value is masked")
	require.Contains(t, results[1], "connecting as *** ", "e-mail addresses are masked")
	require.Contains(t, results[1], "for ***\n", "configured patterns are masked")
	requireNoSecret(t, reqs)
	require.InDelta(t, 1, testutil.ToFloat64(f.h.metrics.ai.toolCalls.WithLabelValues("ask", "kubectl_logs", "ok")), 0)
	require.InDelta(t, 1, testutil.ToFloat64(f.h.metrics.ai.questions.WithLabelValues("ask", "answered")), 0)
	require.InDelta(t, 400, testutil.ToFloat64(f.h.metrics.ai.tokens.WithLabelValues("ask", "prompt")), 0)
	require.InDelta(t, 2, testutil.ToFloat64(f.h.metrics.total.WithLabelValues("kubectl-read", "ok")), 0, "both tool calls are audited as commands")

	// The suggestion is a Run button, checked by the policy when clicked:
	// kubectl-read allows no rollout restart.
	last := m.Sections[len(m.Sections)-1]
	require.Len(t, last.Buttons, 1)
	require.Equal(t, "Run: kubectl rollout restart deployment/web -n apps", last.Buttons[0].Label)
	require.NotContains(t, last.Buttons[0].ID, "rollout", "the button carries only an opaque id")
	clicked := f.h.Handle(t.Context(), chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "ai", ID: "ai"}, UserID: "U2",
		ButtonID: last.Buttons[0].ID, Thread: chat.MessageRef{ID: "Q1"}})
	require.Equal(t, "Denied by kubechat policy", clicked.Title)
	require.Contains(t, clicked.PlainText(), `"rollout restart" is not one of them`)
	require.Len(t, f.llm.Requests(), 2, "a click never reaches the model")

	// A follow-up in the thread continues the conversation.
	f.llm.Push(llmtest.Reply{Text: "Yes, after the Secret is fixed."})
	f.ask(t, "ai", "ask will a restart fix it?", chat.MessageRef{ID: "Q2", Thread: "Q1"})
	follow := f.llm.Requests()[2]
	var said []string
	for _, msg := range follow.Messages {
		said = append(said, msg.Role+": "+msg.Text())
	}
	require.Contains(t, said, "user: why is web failing? it's urgent; really")
	require.Contains(t, strings.Join(said, "\n"), "assistant: The database rejects web's password.")
	require.Empty(t, toolResults(follow), "tool output is not remembered")
	require.Equal(t, "user: will a restart fix it?", said[len(said)-1])
}

// TestAskRefusals: a tool the channel may not run is refused, and the
// refusal is what the model sees, not an error for the user; so are calls
// into a namespace that is never sent, and unknown tools.
func TestAskRefusals(t *testing.T) {
	f := newAskFixture(t)
	f.llm.Push(
		llmtest.Reply{ToolCalls: []llmtest.Call{
			{Name: "kubectl_logs", Arguments: fmt.Sprintf(`{"pod":%q,"namespace":"apps"}`, f.pod)},
			{Name: "helm_status", Arguments: `{"release":"web","namespace":"apps"}`},
			{Name: "kubectl_get", Arguments: `{"resource":"pods","namespace":"kube-system"}`},
		}},
		llmtest.Reply{Text: "I may not read the logs here."},
	)
	m := f.ask(t, "nologs", "ask why is web failing?", chat.MessageRef{ID: "Q1"})
	require.Equal(t, "AI: why is web failing?", m.Title)
	require.Contains(t, m.PlainText(), "I may not read the logs here.")
	reqs := f.llm.Requests()
	require.Len(t, reqs, 2)
	results := toolResults(reqs[1])
	require.Len(t, results, 3)
	require.Contains(t, results[0], `refused: denied by kubechat policy: executor "kubectl-nologs" allows the verbs get, describe; "logs" is not one of them`)
	require.Contains(t, results[1], "refused: this channel may not run helm commands")
	require.Contains(t, results[2], `refused: nothing from namespace "kube-system" is sent to the model`)
	requireNoSecret(t, reqs)
	require.InDelta(t, 2, testutil.ToFloat64(f.h.metrics.ai.refusals.WithLabelValues("ask", "policy")), 0)
	require.InDelta(t, 1, testutil.ToFloat64(f.h.metrics.ai.refusals.WithLabelValues("ask", "privacy")), 0)
	require.InDelta(t, 1, testutil.ToFloat64(f.h.metrics.total.WithLabelValues("kubectl-nologs", "denied_policy")), 0, "the refusal is audited")
}

// TestAskToolBudget: a model that keeps calling tools is stopped by the
// budget of tool calls; the answer is what it found so far, and says which
// limit stopped it.
func TestAskToolBudget(t *testing.T) {
	f := newAskFixture(t)
	f.llm.Respond(func(_ int, req llmtest.Request) llmtest.Reply {
		if len(req.Tools) == 0 {
			return llmtest.Reply{Text: "So far: web has one pod."}
		}
		return llmtest.Reply{ToolCalls: []llmtest.Call{{Name: "kubectl_get", Arguments: `{"resource":"pods","namespace":"apps"}`}}}
	})
	m := f.ask(t, "ai", "ask what runs in apps?", chat.MessageRef{ID: "Q1"})
	text := m.PlainText()
	require.Contains(t, text, "So far: web has one pod.")
	require.Contains(t, text, "Stopped by the limit of 3 tool calls per question: this is what was found so far.")
	require.Equal(t, chat.LevelWarning, m.Level)
	reqs := f.llm.Requests()
	require.Len(t, reqs, 4, "three turns with tools, then one without")
	require.Empty(t, reqs[3].Tools, "the last turn offers no tools")
	require.Len(t, toolResults(reqs[3]), 3)
	require.InDelta(t, 3, testutil.ToFloat64(f.h.metrics.total.WithLabelValues("kubectl-read", "ok")), 0, "three commands ran")
	require.InDelta(t, 1, testutil.ToFloat64(f.h.metrics.ai.stops.WithLabelValues("ask", "tool_calls")), 0)
}

// TestAskAlertButton: a failure alert in a channel with an assistant gets
// "Ask AI"; the click asks about the alert's object with the alert as
// context. An alert about a namespace never sent gets no button.
func TestAskAlertButton(t *testing.T) {
	f := newAskFixture(t)
	ev := event.Event{Type: event.Error, Level: event.Critical, Cluster: "dev", Reason: "CrashLoopBackOff", Message: "back-off restarting failed container",
		Object: event.Object{Kind: "Pod", Namespace: "apps", Name: f.pod}, Transition: event.Failing}
	buttons := f.h.AlertButtons(t.Context(), ev, "chat", chat.Channel{Name: "ai", ID: "ai"})
	require.Len(t, buttons, 1)
	require.Equal(t, "Ask AI", buttons[0].Label)
	private := ev
	private.Object.Namespace = "kube-system"
	require.Empty(t, f.h.AlertButtons(t.Context(), private, "chat", chat.Channel{Name: "ai", ID: "ai"}))

	f.llm.Push(llmtest.Reply{Text: "The container keeps crashing."})
	alert := chat.MessageRef{Platform: "chat", Channel: "ai", ID: "ALERT1"}
	var drafts []string
	m := f.h.HandleDraft(t.Context(), chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "ai", ID: "ai"}, UserID: "U1",
		ButtonID: buttons[0].ID, Thread: alert}, draftFunc(func(m chat.Message) { drafts = append(drafts, m.PlainText()) }))
	require.Equal(t, "AI: Why is Pod apps/"+f.pod+" failing? Find the cause and suggest a fix.", m.Title)
	require.Equal(t, alert, *m.Thread, "the answer goes into the alert's thread")
	require.Contains(t, m.PlainText(), "The container keeps crashing.")
	require.NotEmpty(t, drafts, "the answer was shown as it arrived")
	require.Contains(t, drafts[len(drafts)-1], "The container keeps crashing.")
	first := f.llm.Requests()[0].Messages
	require.Contains(t, first[len(first)-1].Text(), "Reason: CrashLoopBackOff")
	require.Contains(t, first[len(first)-1].Text(), "back-off restarting failed container")
}

type draftFunc func(chat.Message)

func (f draftFunc) Show(m chat.Message) { f(m) }
