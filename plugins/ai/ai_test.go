package ai

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/llm/llmtest"
)

func TestMemoryEvictsOldestFirst(t *testing.T) {
	m := newMemory(Memory{Entries: 3, Bytes: 40, Threads: 2})
	for i := range 5 {
		m.add("a", exchange{question: fmt.Sprint("q", i), answer: fmt.Sprint("a", i)})
	}
	require.Equal(t, []exchange{{"q2", "a2"}, {"q3", "a3"}, {"q4", "a4"}}, m.get("a"), "entries per thread")

	m.add("a", exchange{question: strings.Repeat("x", 30), answer: "y"})
	got := m.get("a")
	require.LessOrEqual(t, total(got), 40, "bytes per thread")
	require.Equal(t, "y", got[len(got)-1].answer, "the newest stays")

	m.add("b", exchange{question: "qb", answer: "ab"})
	m.get("a") // a is now the most recently used
	m.add("c", exchange{question: "qc", answer: "ac"})
	require.Nil(t, m.get("b"), "the least recently used thread is forgotten")
	require.NotNil(t, m.get("a"))
	require.NotNil(t, m.get("c"))

	m.add("d", exchange{question: strings.Repeat("q", 100), answer: strings.Repeat("a", 100)})
	require.LessOrEqual(t, total(m.get("d")), 40, "one exchange larger than the bound is cut")
}

func TestToolArgumentsAreNamesNeverFlags(t *testing.T) {
	get, _ := toolNamed("kubectl_get")
	logs, _ := toolNamed("kubectl_logs")
	for _, bad := range []string{
		`{"resource":"pods","namespace":"-A"}`,
		`{"resource":"--raw=/api","namespace":"shop"}`,
		`{"resource":"pods","name":"web; rm -rf /","namespace":"shop"}`,
		`{"resource":"pods","namespace":"shop","output":"yaml"}`,
		`{"resource":"pods"}`,
		`not json`,
	} {
		_, err := get.parse(bad, 100)
		require.Error(t, err, bad)
	}
	a, err := get.parse(`{"resource":"nodes"}`, 100)
	require.NoError(t, err, "cluster-scoped resources need no namespace")
	require.Equal(t, []string{"get", "nodes", "-o", "wide"}, get.argv(a))
	a, err = logs.parse(`{"pod":"web-1","namespace":"shop","tail":5000,"previous":"true"}`, 100)
	require.NoError(t, err)
	require.Equal(t, []string{"logs", "web-1", "-n", "shop", "--tail", "100", "--previous"}, logs.argv(a), "the tail is capped")
}

func TestSuggestedCommands(t *testing.T) {
	text := "Restart it:\n`kubectl rollout restart deployment/web -n shop`\n\n```\nhelm rollback web 3 -n shop\n```\n" +
		"Not this: `kubectl get pods | sh` nor `rm -rf /`, and `kubectl rollout restart deployment/web -n shop` again."
	require.Equal(t, [][]string{
		{"kubectl", "rollout", "restart", "deployment/web", "-n", "shop"},
		{"helm", "rollback", "web", "3", "-n", "shop"},
	}, suggested(text))
}

// runner is a ToolRunner that runs nothing and counts calls.
type runner struct{ calls int }

func (r *runner) Has(typ string) bool { return typ == "kubectl" }
func (r *runner) Run(_ context.Context, _ string, args []string) executor.ToolResult {
	r.calls++
	return executor.ToolResult{Output: "ran " + strings.Join(args, " ")}
}

func newTestExecutor(t *testing.T, srv *llmtest.Server, extra string) *Executor {
	t.Helper()
	raw, err := config.RawFromYAML(fmt.Sprintf("provider: {baseURL: %q, model: m, retries: 0}\n%s", srv.BaseURL(), extra))
	require.NoError(t, err)
	e, err := New("ask", raw, executor.Deps{Cluster: "dev"})
	require.NoError(t, err)
	return e.(*Executor)
}

func TestTokenBudgets(t *testing.T) {
	srv := llmtest.New(t)
	srv.Respond(func(int, llmtest.Request) llmtest.Reply {
		return llmtest.Reply{ToolCalls: []llmtest.Call{{Name: "kubectl_get", Arguments: `{"resource":"nodes"}`}}, PromptTokens: 400, CompletionTokens: 100}
	})
	e := newTestExecutor(t, srv, "budgets: {tokensPerQuestion: 1000, tokensPerDay: 1500}")
	r := &runner{}
	ans, err := e.Ask(t.Context(), executor.Question{Text: "what runs?", Conversation: "c1"}, r, func(string) {})
	require.NoError(t, err)
	require.Equal(t, stopTokens, ans.StoppedBy)
	require.Equal(t, "Stopped by the limit of 1000 tokens per question: this is what was found so far.", ans.StopNote)
	require.Equal(t, 2, r.calls)
	require.Contains(t, ans.Text, "Looked at: kubectl get nodes -o wide, kubectl get nodes -o wide")

	ans, err = e.Ask(t.Context(), executor.Question{Text: "and now?", Conversation: "c2"}, r, func(string) {})
	require.NoError(t, err)
	require.Equal(t, stopDaily, ans.StoppedBy, "1000 of 1500 spent: the second question hits the daily limit")
	require.Equal(t, 3, r.calls)
	ans, err = e.Ask(t.Context(), executor.Question{Text: "again?", Conversation: "c3"}, r, func(string) {})
	require.NoError(t, err)
	require.Equal(t, stopDaily, ans.StoppedBy)
	require.Equal(t, "Stopped by the daily limit of 1500 tokens: this is what was found so far.", ans.StopNote)
	require.Len(t, srv.Requests(), 3, "a spent day asks nothing")
}

func TestLogsOnlyWithSendLogs(t *testing.T) {
	srv := llmtest.New(t)
	srv.Push(llmtest.Reply{ToolCalls: []llmtest.Call{{Name: "kubectl_logs", Arguments: `{"pod":"web-1","namespace":"shop"}`}}}, llmtest.Reply{Text: "no logs"})
	e := newTestExecutor(t, srv, "")
	r := &runner{}
	ans, err := e.Ask(t.Context(), executor.Question{Text: "why?"}, r, func(string) {})
	require.NoError(t, err)
	require.NotContains(t, srv.Requests()[0].Tools, "kubectl_logs", "not offered")
	require.Zero(t, r.calls)
	require.Equal(t, []executor.ToolCall{{Tool: "kubectl_logs", Result: "refused", RefusedBy: "privacy"}}, ans.Tools)
	require.Contains(t, srv.Requests()[1].Body, "privacy.sendLogs is off")
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	for settings, want := range map[string]string{
		"provider: {baseURL: 'http://x'}":                               "settings.provider.model",
		"provider: {model: m}\nprivacy: {neverSend: [Not_A_Namespace]}": "settings.privacy.neverSend[0]",
		"provider: {model: m}\nprivacy: {mask: ['(']}":                  "settings.privacy.mask[0]",
		"provider: {model: m}\nprivacy: {mask: ['x*']}":                 "matches the empty string",
		"provider: {model: m}\nbudgets: {toolCalls: -1}":                "settings.budgets.toolCalls",
		"provider: {model: m}\nbudget: {}":                              "budget",
	} {
		raw, err := config.RawFromYAML(settings)
		require.NoError(t, err)
		_, err = New("ask", raw, executor.Deps{})
		require.ErrorContains(t, err, want, settings)
	}
}
