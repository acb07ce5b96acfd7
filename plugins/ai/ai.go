// Package ai is the AI troubleshooting assistant: "@kubechat ask why is web
// failing in shop?", and the "Ask AI" button under failure alerts. It asks
// any OpenAI-compatible Chat Completions model (internal/llm), offering it
// a fixed set of read-only tools (kubectl get, describe, logs, events,
// top; helm status and history; flux get; argocd app get) as functions.
//
// The model never runs anything itself: each tool call becomes a command
// that the command handler runs through the channel's executor of that
// type, its policy, the asking user's or channel's identity, its audit and
// output cap (executor.ToolRunner), exactly as if the user had typed it. A
// refusal goes back to the model as the tool's result. Every result is
// masked before it is sent: the values of the Secrets of the namespace it
// came from, built-in patterns (e-mail addresses, tokens, keys) and the
// configured ones. Namespaces listed in privacy.neverSend are never looked
// into, and logs are sent only with privacy.sendLogs.
//
// Budgets (tool calls and tokens per question, tokens per day, time) end
// an answer early with what was found so far. Follow-ups in a thread
// continue its conversation, within the memory bounds.
package ai

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/openai/openai-go/v3"
	"k8s.io/client-go/kubernetes"

	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/llm"
)

// Executor is the ai executor.
type Executor struct {
	name     string
	cluster  string
	s        Settings
	patterns []*regexp.Regexp
	client   *llm.Client
	secrets  kubernetes.Interface // the agent's own, to read Secret values for masking
	memory   *memory

	mu        sync.Mutex
	day       string
	usedToday int64
}

// New builds the ai executor. It does not contact the provider.
func New(name string, raw config.Raw, d executor.Deps) (executor.Executor, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("ai executor %q: %w", name, err)
	}
	patterns, err := s.check()
	if err != nil {
		return nil, fmt.Errorf("ai executor %q: %w", name, err)
	}
	s.withDefaults()
	e := &Executor{name: name, cluster: d.Cluster, s: s, patterns: patterns, memory: newMemory(s.Memory),
		client: llm.New(s.Provider, &http.Client{})}
	if d.RESTConfig != nil {
		if e.secrets, err = kubernetes.NewForConfig(d.RESTConfig); err != nil {
			return nil, fmt.Errorf("ai executor %q: %w", name, err)
		}
	}
	return e, nil
}

// Name is the configured executor name.
func (e *Executor) Name() string { return e.name }

// verbAsk is the one verb: policies allow it by default.
const verbAsk = "ask"

// ReadOnlyVerbs is "ask": asking changes nothing; the tools are checked
// one by one against their own executors' policies.
func (e *Executor) ReadOnlyVerbs() []string { return []string{verbAsk} }

// Analyze describes a question: it touches no objects itself.
func (e *Executor) Analyze(context.Context, []string) (executor.Analysis, error) {
	return executor.Analysis{Verb: verbAsk}, nil
}

// Execute refuses: questions go through Ask, with the command handler's tools.
func (e *Executor) Execute(context.Context, executor.Request) (executor.Result, error) {
	return executor.Result{}, errors.New("the ai executor answers questions: @kubechat ask <question>")
}

// Private reports whether namespace is never sent to the model.
func (e *Executor) Private(namespace string) bool {
	return slices.Contains(e.s.Privacy.NeverSend, namespace)
}

const systemPrompt = `You are kubechat's troubleshooting assistant for the Kubernetes cluster %q, answering in a chat thread.
Look at the cluster with the tools before you answer; they are read-only and run with the asking user's permissions.
A refused tool call says why: do not try it again. Tool output has secret values replaced by ***.
Answer briefly in Markdown: the cause, the evidence you saw, and the fix.
Put each command you suggest on a line of its own, in backticks, starting with kubectl, helm, flux or argocd.
You cannot change the cluster; the user decides whether to run what you suggest.`

// budget names, as Answer.StoppedBy and the metrics say them.
const (
	stopToolCalls = "tool_calls"
	stopTokens    = "question_tokens"
	stopDaily     = "daily_tokens"
	stopTime      = "time"
)

// Ask answers q, calling tools through the command handler's runner.
func (e *Executor) Ask(ctx context.Context, q executor.Question, runner executor.ToolRunner, draft func(string)) (executor.Answer, error) {
	b := e.s.Budgets
	var ans executor.Answer
	if e.dailyLeft() <= 0 {
		ans.StoppedBy, ans.StopNote = stopDaily, e.note(stopDaily)
		return ans, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.Time.D())
	defer cancel()
	m := newMasker(e.secrets, e.patterns)
	msgs := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(fmt.Sprintf(systemPrompt, e.cluster))}
	for _, x := range e.memory.get(q.Conversation) {
		msgs = append(msgs, openai.UserMessage(x.question), openai.AssistantMessage(x.answer))
	}
	question := m.mask(q.Text)
	if q.About != "" {
		question = "About this alert:\n" + m.mask(q.About) + "\n\n" + question
	}
	msgs = append(msgs, openai.UserMessage(question))
	offered := e.offered(runner)
	var defs []openai.ChatCompletionToolUnionParam
	for _, t := range offered {
		defs = append(defs, t.definition())
	}
	var looked []string // the commands run so far, for the draft and a stopped answer
	var text strings.Builder
	show := func() {
		var s string
		if len(looked) > 0 {
			s = "Looked at: " + strings.Join(looked, ", ") + "\n\n"
		}
		draft(s + text.String())
	}
	used := int64(0)
	for {
		if ctx.Err() != nil {
			ans.StoppedBy = stopTime
			break
		}
		left := min(b.TokensPerQuestion-used, e.dailyLeft())
		if left <= 0 {
			ans.StoppedBy = stopTokens
			if e.dailyLeft() <= 0 {
				ans.StoppedBy = stopDaily
			}
			break
		}
		text.Reset()
		toolsNow := defs
		if len(ans.Tools) >= b.ToolCalls {
			toolsNow = nil // the last turn: answer with what was found
		}
		turn, err := e.client.Complete(ctx, msgs, toolsNow, left, func(d string) { text.WriteString(d); show() })
		used += turn.PromptTokens + turn.CompletionTokens
		ans.PromptTokens += turn.PromptTokens
		ans.CompletionTokens += turn.CompletionTokens
		e.spend(turn.PromptTokens + turn.CompletionTokens)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
				ans.StoppedBy = stopTime
				break
			}
			return ans, err
		}
		msgs = append(msgs, turn.Message)
		if len(turn.ToolCalls) == 0 || toolsNow == nil {
			ans.Text = turn.Content
			if turn.FinishReason == "length" {
				ans.StoppedBy = stopTokens
			}
			if toolsNow == nil && len(defs) > 0 {
				ans.StoppedBy = stopToolCalls // the tools were withdrawn
			}
			break
		}
		for _, call := range turn.ToolCalls {
			if len(ans.Tools) >= b.ToolCalls {
				msgs = append(msgs, openai.ToolMessage(fmt.Sprintf("not run: the budget of %d tool calls per question is spent; answer with what you found", b.ToolCalls), call.ID))
				ans.StoppedBy = stopToolCalls
				continue
			}
			out, tc, argv := e.call(ctx, call, offered, runner, m)
			ans.Tools = append(ans.Tools, tc)
			if argv != "" {
				looked = append(looked, argv)
				show()
			}
			msgs = append(msgs, openai.ToolMessage(out, call.ID))
		}
	}
	if ans.StoppedBy != "" {
		ans.StopNote = e.note(ans.StoppedBy)
		if ans.Text == "" {
			ans.Text = strings.TrimSpace(text.String())
		}
		if len(looked) > 0 {
			ans.Text = strings.TrimSpace(ans.Text + "\n\nLooked at: " + strings.Join(looked, ", "))
		}
	}
	ans.Suggested = suggested(ans.Text)
	if ans.Text != "" {
		e.memory.add(q.Conversation, exchange{question: question, answer: ans.Text})
	}
	return ans, nil
}

// note says which budget stopped an answer.
func (e *Executor) note(budget string) string {
	b := e.s.Budgets
	what := map[string]string{
		stopToolCalls: fmt.Sprintf("the limit of %d tool calls per question", b.ToolCalls),
		stopTokens:    fmt.Sprintf("the limit of %d tokens per question", b.TokensPerQuestion),
		stopDaily:     fmt.Sprintf("the daily limit of %d tokens", b.TokensPerDay),
		stopTime:      fmt.Sprintf("the time limit of %s per question", b.Time),
	}[budget]
	return "Stopped by " + what + ": this is what was found so far."
}

// offered are the tools the channel may run and privacy allows.
func (e *Executor) offered(runner executor.ToolRunner) []tool {
	var out []tool
	for _, t := range tools {
		if (!t.logs || e.s.Privacy.SendLogs) && runner.Has(t.executor) {
			out = append(out, t)
		}
	}
	return out
}

// call runs one tool call and returns what the model is told, the call's
// outcome, and the command as it ran (empty if none did).
func (e *Executor) call(ctx context.Context, c llm.ToolCall, offered []tool, runner executor.ToolRunner, m *masker) (string, executor.ToolCall, string) {
	t, ok := toolNamed(c.Name)
	tc := executor.ToolCall{Tool: t.name, Result: "refused"}
	switch {
	case !ok:
		tc.Tool, tc.RefusedBy = "unknown", "unknown_tool"
		return fmt.Sprintf("refused: there is no tool %q", c.Name), tc, ""
	case t.logs && !e.s.Privacy.SendLogs:
		tc.RefusedBy = "privacy"
		return "refused: this agent does not send container logs (privacy.sendLogs is off)", tc, ""
	case !slices.ContainsFunc(offered, func(o tool) bool { return o.name == t.name }):
		tc.RefusedBy = "policy"
		return fmt.Sprintf("refused: this channel may not run %s commands", t.executor), tc, ""
	}
	a, err := t.parse(c.Arguments, e.s.Privacy.LogLines)
	if err != nil {
		tc.Result = "failed"
		return "error: " + err.Error(), tc, ""
	}
	if ns := a["namespace"]; ns != "" && e.Private(ns) {
		tc.RefusedBy = "privacy"
		return fmt.Sprintf("refused: nothing from namespace %q is sent to the model", ns), tc, ""
	}
	if err := m.load(ctx, a["namespace"]); err != nil {
		tc.RefusedBy = "privacy"
		return "withheld: " + err.Error(), tc, ""
	}
	argv := t.argv(a)
	shown := t.executor + " " + strings.Join(argv, " ")
	res := runner.Run(ctx, t.executor, argv)
	if res.Namespace != "" && res.Namespace != a["namespace"] {
		// It ran in the policy's default namespace.
		if e.Private(res.Namespace) {
			tc.RefusedBy = "privacy"
			return fmt.Sprintf("withheld: nothing from namespace %q is sent to the model", res.Namespace), tc, shown
		}
		if err := m.load(ctx, res.Namespace); err != nil {
			tc.RefusedBy = "privacy"
			return "withheld: " + err.Error(), tc, shown
		}
	}
	switch {
	case res.Refused:
		tc.RefusedBy = res.RefusedBy
	case res.Failed:
		tc.Result = "failed"
	default:
		tc.Result = "ok"
	}
	out := m.mask(res.Output)
	if len(out) > e.s.Privacy.MaxToolOutputBytes {
		out = cut(out, e.s.Privacy.MaxToolOutputBytes) + "\n[cut at the agent's limit]"
	}
	if out == "" {
		out = "(no output)"
	}
	return out, tc, shown
}

// spend counts tokens against today's budget.
func (e *Executor) spend(n int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rollDay()
	e.usedToday += n
}

func (e *Executor) dailyLeft() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rollDay()
	return e.s.Budgets.TokensPerDay - e.usedToday
}

func (e *Executor) rollDay() {
	if d := time.Now().UTC().Format(time.DateOnly); d != e.day {
		e.day, e.usedToday = d, 0
	}
}

// suggestedRE finds commands in backticks (inline or a fenced block's lines).
var suggestedRE = regexp.MustCompile("(?m)(?:`|^)((?:kubectl|helm|flux|argocd) [^`\n]+)(?:`|$)")

// maxSuggested bounds the Run buttons under one answer.
const maxSuggested = 3

// suggested are the commands the answer suggests, as argv, split as a
// typed command is split (no shell: a command with shell operators is no
// suggestion).
func suggested(text string) [][]string {
	var out [][]string
	for _, m := range suggestedRE.FindAllStringSubmatch(text, -1) {
		cmd, err := command.Parse(strings.TrimSpace(m[1]), nil)
		if err != nil || cmd.Filter != nil || cmd.Cluster != "" || len(cmd.Args) == 0 {
			continue
		}
		argv := cmd.Argv()
		if !slices.ContainsFunc(out, func(o []string) bool { return slices.Equal(o, argv) }) {
			out = append(out, argv)
		}
		if len(out) == maxSuggested {
			break
		}
	}
	return out
}
