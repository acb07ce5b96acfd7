package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kubechat/kubechat/internal/button"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/executor"
)

// The AI assistant's side of the command path. A question ("@kubechat ask
// why is web failing in shop?", or a click on an alert's "Ask AI") goes to
// an executor.Assistant with a ToolRunner of this handler: every command
// the model has run to look at the cluster takes the same path as a typed
// one (the channel's executor of that type, its policy, the asking user's
// or the channel's identity, the audit, the output cap), and only
// read-only verbs run. Commands the model suggests come back as one-shot
// "run" buttons, authorised again when clicked.

// askWord is the command word of the channel's assistant, whatever its
// executor is called.
const askWord = "ask"

// buttonAsk is an alert's "Ask AI" button: its parameters are the
// question and what it is about (the alert).
const buttonAsk = "ask"

// maxAbout bounds the alert text an "Ask AI" button keeps.
const maxAbout = 2000

// typedQuestion reports whether in asks the channel's assistant a question
// ("ask ...", or the assistant executor's own name or type) and returns it.
// The question is the text after the word, as typed: it is prose for the
// model, never argv, so quotes and punctuation in it are kept as they are.
func (h *Handler) typedQuestion(in chat.Inbound) (boundExecutor, askedQuestion, bool) {
	ch := h.channels[channelKey(in.Platform, in.Channel.ID)]
	if ch == nil {
		return boundExecutor{}, askedQuestion{}, false
	}
	text := strings.TrimSpace(in.Text)
	var cmd command.Command
	if rest, ok := strings.CutPrefix(text, "--cluster"); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "=")) {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(rest), "="))
		if len(f) == 0 {
			return boundExecutor{}, askedQuestion{}, false
		}
		cmd.Cluster = f[0]
		text = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), "=")), f[0]))
	}
	word, question, _ := strings.Cut(text, " ")
	be, ok := ch.assistant(word)
	if !ok {
		return boundExecutor{}, askedQuestion{}, false
	}
	cmd.Name = word
	return be, askedQuestion{cmd: cmd, question: executor.Question{Text: strings.TrimSpace(question)}}, true
}

type askedQuestion struct {
	cmd      command.Command
	question executor.Question
}

// assistant finds the channel's assistant by the word "ask", or by its
// executor's name or type.
func (ch *channel) assistant(word string) (boundExecutor, bool) {
	for _, be := range ch.executors {
		if _, ok := be.exec.(executor.Assistant); ok && (word == askWord || word == be.exec.Name() || word == be.typ) {
			return be, true
		}
	}
	return boundExecutor{}, false
}

// askButton offers "Ask AI" under a failure alert in a channel whose
// assistant may see the alert's namespace.
func (h *Handler) askButton(ctx context.Context, ev event.Event, platform string, to chat.Channel) []chat.Button {
	ch := h.channels[channelKey(platform, to.ID)]
	if ch == nil {
		return nil
	}
	be, ok := ch.assistant(askWord)
	if !ok || be.exec.(executor.Assistant).Private(ev.Object.Namespace) {
		return nil
	}
	about := []string{"Alert: " + ev.Title(), "Object: " + ev.Object.String()}
	if ev.Reason != "" {
		about = append(about, "Reason: "+ev.Reason)
	}
	if ev.Message != "" {
		about = append(about, "Message: "+ev.Message)
	}
	for _, f := range ev.Fields {
		about = append(about, f.Name+": "+f.Value)
	}
	text := strings.Join(about, "\n")
	if len(text) > maxAbout {
		text = text[:maxAbout]
		for !utf8.ValidString(text) {
			text = text[:len(text)-1]
		}
	}
	question := fmt.Sprintf("Why is %s failing? Find the cause and suggest a fix.", ev.Object.String())
	id, err := h.opts.Buttons.Put(ctx, button.Spec{Kind: buttonAsk,
		Params:   map[string]string{"question": question, "about": text, "executor": be.exec.Name()},
		Platform: platform, Channel: ch.cfg.ID, OneShot: true})
	if err != nil {
		h.log.Warn("no Ask AI button: cannot issue it", "channel", ch.cfg.Name, "err", err)
		return nil
	}
	return []chat.Button{{Label: "Ask AI", ID: id, Style: chat.ButtonPrimary}}
}

// askAbout answers a click on an alert's "Ask AI" in the alert's thread.
func (h *Handler) askAbout(ctx context.Context, a audit, pressed button.Spec, draft chat.Draft) chat.Message {
	ch := h.channels[channelKey(a.in.Platform, a.in.Channel.ID)]
	be, ok := ch.assistant(pressed.Params["executor"])
	if !ok {
		be, ok = ch.assistant(askWord)
	}
	if !ok {
		err := fmt.Errorf("this channel no longer has an AI assistant")
		h.record(ctx, a, resultUnknown, err)
		return errorMessage("Cannot ask", err.Error())
	}
	return h.ask(ctx, a, ch, be, executor.Question{Text: pressed.Params["question"], About: pressed.Params["about"]}, draft)
}

// ask puts q to the assistant be, shows its answer in draft as it grows,
// and returns the answer with a Run button for each command it suggests.
func (h *Handler) ask(ctx context.Context, a audit, ch *channel, be boundExecutor, q executor.Question, draft chat.Draft) chat.Message {
	a.executor, a.verb = be.exec.Name(), askWord
	name := be.exec.Name()
	if q.Text == "" {
		err := fmt.Errorf("ask a question: @kubechat %s why is web failing in shop?", askWord)
		h.record(ctx, a, resultSyntax, err)
		return errorMessage("What is the question?", err.Error())
	}
	if _, err := h.check(ctx, &a, ch, be, []string{askWord}); err != nil {
		h.metrics.ai.questions.WithLabelValues(name, "denied").Inc()
		return errorMessage("Denied by kubechat policy", strings.TrimPrefix(err.Error(), "denied by kubechat policy: "))
	}
	q.Conversation = a.in.Platform + "\x00" + a.in.Channel.ID + "\x00" + a.in.Thread.Root()
	q.Caller = executor.Caller{Platform: a.in.Platform, Channel: a.in.Channel.Name, UserID: a.in.UserID, UserName: a.in.UserName}
	title := "AI: " + oneLine(q.Text, 120)
	show := func(string) {}
	if draft != nil {
		show = func(text string) {
			draft.Show(chat.Message{Title: title, Level: chat.LevelInfo, Sections: []chat.Section{{Text: text + " …"}},
				Context: "cluster: " + h.cluster + " · answering…"})
		}
	}
	tools := &toolRunner{h: h, ch: ch, in: a.in}
	ans, err := be.exec.(executor.Assistant).Ask(ctx, q, tools, show)
	h.metrics.ai.latency.WithLabelValues(name).Observe(time.Since(a.start).Seconds())
	h.metrics.ai.tokens.WithLabelValues(name, "prompt").Add(float64(ans.PromptTokens))
	h.metrics.ai.tokens.WithLabelValues(name, "completion").Add(float64(ans.CompletionTokens))
	for _, tc := range ans.Tools {
		h.metrics.ai.toolCalls.WithLabelValues(name, tc.Tool, tc.Result).Inc()
		if tc.Result == "refused" {
			h.metrics.ai.refusals.WithLabelValues(name, tc.RefusedBy).Inc()
		}
	}
	if err != nil {
		h.metrics.ai.questions.WithLabelValues(name, "failed").Inc()
		h.record(ctx, a, resultError, err)
		return errorMessage("The AI assistant could not answer", err.Error())
	}
	result := "answered"
	if ans.StoppedBy != "" {
		result = "stopped"
		h.metrics.ai.stops.WithLabelValues(name, ans.StoppedBy).Inc()
	}
	h.metrics.ai.questions.WithLabelValues(name, result).Inc()
	h.record(ctx, a, resultOK, nil)
	m := chat.Message{Title: title, Level: chat.LevelInfo}
	text := ans.Text
	if text == "" {
		text = "The model gave no answer."
	}
	m.Sections = append(m.Sections, chat.Section{Text: text})
	if ans.StopNote != "" {
		m.Level = chat.LevelWarning
		m.Sections = append(m.Sections, chat.Section{Text: ans.StopNote})
	}
	var buttons []chat.Button
	for _, argv := range ans.Suggested {
		if len(argv) < 2 || !tools.Has(argv[0]) {
			continue // only commands of an executor this channel has
		}
		cmd := command.Command{Name: argv[0], Args: argv[1:]}
		id, err := h.opts.Buttons.Put(ctx, button.Spec{Kind: buttonRun, Params: map[string]string{"command": encodeCommand(cmd)},
			Platform: a.in.Platform, Channel: a.in.Channel.ID, OneShot: true})
		if err != nil {
			continue
		}
		buttons = append(buttons, chat.Button{Label: "Run: " + oneLine(cmd.String(), 60), ID: id})
	}
	if len(buttons) > 0 {
		m.Sections = append(m.Sections, chat.Section{Text: "Suggested commands run only when clicked, checked by the channel's policy for whoever clicks:", Buttons: buttons})
	}
	m.Context = fmt.Sprintf("cluster: %s · AI answer, check before acting · %d tool calls as %s · %d tokens · %d ms",
		h.cluster, len(ans.Tools), tools.identity(), ans.PromptTokens+ans.CompletionTokens, time.Since(a.start).Milliseconds())
	return m
}

// oneLine is s on one line, cut to n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n-1]) + "…"
	}
	return s
}

// toolRunner runs an assistant's tool calls through the handler's path,
// for the user who asked, in their channel.
type toolRunner struct {
	h  *Handler
	ch *channel
	in chat.Inbound
}

// Has reports whether the channel binds an executor of type typ.
func (r *toolRunner) Has(typ string) bool {
	_, ok := r.executor(typ)
	return ok
}

func (r *toolRunner) executor(typ string) (boundExecutor, bool) {
	for _, be := range r.ch.executors {
		if be.typ == typ {
			if _, isAssistant := be.exec.(executor.Assistant); !isAssistant {
				return be, true
			}
		}
	}
	return boundExecutor{}, false
}

func (r *toolRunner) identity() string {
	id, err := r.h.identityFor(r.ch, r.in)
	if err != nil {
		return "nobody"
	}
	return id.User
}

// Run runs one read-only command as a typed one would run: its verb must
// be one of the executor's read-only verbs, and allowed by the policy
// without a confirmation.
func (r *toolRunner) Run(ctx context.Context, typ string, args []string) executor.ToolResult {
	be, ok := r.executor(typ)
	if !ok {
		return executor.ToolResult{Refused: true, RefusedBy: "policy",
			Output: fmt.Sprintf("refused: this channel may not run %s commands", typ)}
	}
	a := audit{in: r.in, start: time.Now(), executor: be.exec.Name(), via: "ai"}
	c, err := r.h.check(ctx, &a, r.ch, be, args)
	if err != nil {
		return executor.ToolResult{Refused: true, RefusedBy: "policy", Output: "refused: " + err.Error()}
	}
	readOnly := be.policy.DefaultVerbs
	if len(readOnly) == 0 {
		readOnly = executor.ReadOnlyVerbs
	}
	if c.confirm || !slices.Contains(readOnly, c.analysis.Verb) {
		err := fmt.Errorf("%q changes the cluster or needs a confirmation; the assistant runs only read-only commands", c.analysis.Verb)
		r.h.record(ctx, a, resultPolicyDenied, err)
		return executor.ToolResult{Refused: true, RefusedBy: "policy", Output: "refused: " + err.Error()}
	}
	ns := c.ns
	if len(c.analysis.Namespaces) > 0 {
		ns = c.analysis.Namespaces[0]
	}
	res, err := r.h.execute(ctx, a, be, c, args, nil)
	if err != nil {
		r.h.record(ctx, a, resultError, err)
		return executor.ToolResult{Failed: true, Namespace: ns, Output: "error: " + err.Error()}
	}
	out := executor.ToolResult{Namespace: ns, Truncated: res.Truncated, Output: res.Output}
	if res.Errors != "" {
		out.Output += res.Errors
	}
	switch {
	case res.Forbidden:
		r.h.record(ctx, a, resultRBACDenied, nil)
		out.Refused, out.RefusedBy = true, "rbac"
		out.Output = fmt.Sprintf("refused by Kubernetes RBAC for %s:\n%s", c.id.User, out.Output)
	case res.ExitCode != 0:
		r.h.record(ctx, a, resultFailed, nil)
		out.Failed = true
	default:
		r.h.record(ctx, a, resultOK, nil)
	}
	if res.Truncated {
		out.Output += fmt.Sprintf("\n[output stopped at the policy's limit of %d bytes]", be.policy.MaxOutputBytes)
	}
	return out
}
