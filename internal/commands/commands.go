// Package commands answers what users type or click in chat: it parses a
// command, checks the channel's policy, picks the identity to pressed as, runs
// the executor and renders the reply, with its buttons (Run again,
// Confirm, the command builder's selects, an executor's follow-ups). It
// also runs the actions that follow alerts (config actions:), as the
// channel the alert went to, through the same path.
//
// Who sets timeouts: the caller's context bounds a reply; each command gets
// its policy's timeout on top. Handle blocks until the reply is ready.
package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubechat/kubechat/internal/buildinfo"
	"github.com/kubechat/kubechat/internal/button"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/health"
	"github.com/kubechat/kubechat/internal/state"
)

// Handler answers inbound messages and button clicks (it is the
// chat.Handler every platform is given), and runs the actions that follow
// alerts (it is alerting's Actions).
type Handler struct {
	cfg      *config.Config
	cluster  string
	opts     Options
	channels map[string]*channel // by platform + channel id
	users    map[string]config.User
	aliases  command.Aliases
	log      *slog.Logger
	metrics  *Metrics
	actions  map[string]boundAction // by name
	slots    *slots
}

// Options are the handler's optional parts.
type Options struct {
	// Executors are the built executors by configured name.
	Executors map[string]executor.Executor
	// PodExecutors are the executors, by configured name, that run each
	// command in a pod; a channel uses them where config.IsolationFor says pod.
	PodExecutors map[string]executor.Executor
	// State keeps the actions' switches (default: in memory).
	State chat.StateStore
	// Health reports the agent's parts for "status".
	Health *health.Tracker
	// KubernetesVersion reports the API server version for "ping".
	KubernetesVersion func(context.Context) (string, error)
	// Buttons issues and redeems button ids (default: a store with a random key).
	Buttons *button.Store
	// Alerts is the alerting side, for "notifications" and "status"
	// (nil: an agent that only answers commands).
	Alerts Alerts
	// Platforms are the chat platforms by name, for the address of a
	// command's thread (Analysis.LinksThread; nil: no links).
	Platforms map[string]chat.Platform
	// Metrics are shared by every handler of the agent (default: built
	// with New's registerer).
	Metrics *Metrics
}

// Alerts is what the built-in commands need of the alerting side.
type Alerts interface {
	// NotificationsOn reports whether a channel takes alerts.
	NotificationsOn(platform, channelID string) bool
	// SetNotifications switches a channel's alerts on or off.
	SetNotifications(ctx context.Context, platform, channelID string, on bool) error
	// Pending counts the messages queued and not yet delivered.
	Pending() int
}

// New builds the handler for the configured channels, executors, users,
// aliases and actions. Without opts.Metrics it registers its metrics with
// reg.
func New(cfg *config.Config, opts Options, reg prometheus.Registerer, log *slog.Logger) (*Handler, error) {
	aliases, err := command.ParseAliases(cfg.Aliases)
	if err != nil {
		return nil, fmt.Errorf("commands: %w", err)
	}
	if _, ok := aliases["k"]; !ok {
		aliases["k"] = []string{"kubectl"}
	}
	if opts.Buttons == nil {
		if opts.Buttons, err = button.NewStore(nil, button.DefaultTTL); err != nil {
			return nil, fmt.Errorf("commands: %w", err)
		}
	}
	if opts.State == nil {
		opts.State = state.NewMemory()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(reg)
	}
	h := &Handler{
		cfg:      cfg,
		cluster:  cfg.Cluster.Name,
		opts:     opts,
		channels: map[string]*channel{},
		users:    map[string]config.User{},
		aliases:  aliases,
		log:      log,
		metrics:  opts.Metrics,
		slots:    newSlots(cfg.Commands),
	}
	execCfg := map[string]config.Executor{}
	for _, e := range cfg.Executors {
		execCfg[e.Name] = e
	}
	for _, ch := range cfg.Channels {
		c := &channel{cfg: ch}
		for _, name := range ch.Bindings.Executors {
			e, ok := opts.Executors[name]
			if config.IsolationFor(ch, execCfg[name]) == config.IsolationPod {
				e, ok = opts.PodExecutors[name]
			}
			if !ok {
				return nil, fmt.Errorf("commands: channel %q: executor %q is not built", ch.Name, name)
			}
			policy := executor.PolicyFor(execCfg[name], e)
			if o, ok := e.(executor.OpaqueResources); ok && o.OpaqueResources() != "" && len(policy.Resources) > 0 && !slices.Contains(policy.Resources, "*") {
				return nil, fmt.Errorf("commands: channel %q: executor %q: policy.resources cannot restrict it: %s", ch.Name, name, o.OpaqueResources())
			}
			c.executors = append(c.executors, boundExecutor{exec: e, typ: execCfg[name].Type, policy: policy})
		}
		h.channels[channelKey(ch.Platform, ch.ID)] = c
	}
	for _, u := range cfg.Users {
		h.users[userKey(u.Platform, u.ID)] = u
	}
	if err := h.buildActions(); err != nil {
		return nil, fmt.Errorf("commands: %w", err)
	}
	h.opts.Buttons.SetIssuer(h.cluster)
	return h, nil
}

// channel is a configured channel as the command path needs it.
type channel struct {
	cfg       config.Channel
	executors []boundExecutor
}

type boundExecutor struct {
	exec   executor.Executor
	typ    string
	policy executor.Policy
}

// Handle answers one inbound message. A command addressed to another
// cluster (--cluster) gets an empty message: that agent answers it.
func (h *Handler) Handle(ctx context.Context, in chat.Inbound) chat.Message {
	return h.handle(ctx, in, nil)
}

// HandleDraft is Handle for a platform that can show a reply as it grows:
// an assistant's answer is shown in d as it arrives.
func (h *Handler) HandleDraft(ctx context.Context, in chat.Inbound, d chat.Draft) chat.Message {
	return h.handle(ctx, in, d)
}

func (h *Handler) handle(ctx context.Context, in chat.Inbound, draft chat.Draft) chat.Message {
	in.Channel = h.configuredChannel(in)
	a := audit{in: in, start: time.Now()}
	confirmed := false
	reply := func(m chat.Message) chat.Message {
		m.Thread = &in.Thread
		if m.Context == "" {
			m.Context = "cluster: " + h.cluster
		}
		return m
	}
	var pressed button.Spec
	if in.ButtonID != "" {
		// A click is re-authorised like typed text: policy and identity
		// run again, for the user who clicked.
		var err error
		pressed, err = h.opts.Buttons.Take(ctx, in.ButtonID, in.Platform, in.Channel.ID)
		if errors.Is(err, button.ErrForeign) {
			return chat.Message{} // another cluster's agent issued it, and answers it
		}
		if err == nil && !slices.Contains([]string{buttonRun, buttonBuild, buttonConfirm, buttonCancel, buttonAsk, buttonMute}, pressed.Kind) {
			err = fmt.Errorf("this button (%s) is not handled here", pressed.Kind)
		}
		if err != nil {
			h.record(ctx, a, resultPolicyDenied, err)
			return reply(errorMessage("Button refused", err.Error()))
		}
		switch pressed.Kind {
		case buttonBuild:
			return reply(h.continueBuild(ctx, a, pressed))
		case buttonCancel:
			// Spend the confirm button, so that it cannot run afterwards.
			_, _ = h.opts.Buttons.Take(ctx, pressed.Params["confirm"], in.Platform, in.Channel.ID)
			return reply(chat.Message{Title: "Cancelled: " + pressed.Params["title"], Level: chat.LevelInfo,
				Sections: []chat.Section{{Text: "Nothing ran. Cancelled by " + who(in) + "."}}})
		case buttonConfirm:
			confirmed = true
		case buttonAsk:
			return reply(h.askAbout(ctx, a, pressed, draft))
		case buttonMute:
			return reply(h.mute(ctx, a, pressed, in.Value))
		}
	}
	if in.ButtonID == "" {
		if be, q, ok := h.typedQuestion(in); ok {
			if !h.addressed(h.channels[channelKey(in.Platform, in.Channel.ID)], in, q.cmd) {
				return chat.Message{}
			}
			return reply(h.ask(ctx, a, h.channels[channelKey(in.Platform, in.Channel.ID)], be, q.question, draft))
		}
	}
	var cmd command.Command
	var err error
	if in.ButtonID != "" {
		// A button runs exactly the argv it was given, never a re-parse.
		cmd, err = decodeCommand(pressed.Params["command"])
	} else {
		cmd, err = command.Parse(in.Text, h.aliases)
	}
	if err != nil {
		h.record(ctx, a, resultSyntax, err)
		return reply(errorMessage("Cannot run that", err.Error()))
	}
	ch := h.channels[channelKey(in.Platform, in.Channel.ID)]
	if in.ButtonID == "" && !h.addressed(ch, in, cmd) {
		return chat.Message{}
	}
	if b, ok := h.builtins()[cmd.Name]; ok {
		a.executor, a.verb = "builtin", cmd.Name
		if b.admin && !h.isAdmin(in) {
			err := fmt.Errorf("%q is an admin command; ask an admin (users[].admin in the config)", cmd.Name)
			h.record(ctx, a, resultPolicyDenied, err)
			return reply(errorMessage("Denied by kubechat policy", err.Error()))
		}
		m, err := b.run(ctx, ch, in, cmd.Args)
		if err != nil {
			h.record(ctx, a, resultFailed, err)
			return reply(errorMessage(cmd.Name+" failed", err.Error()))
		}
		h.record(ctx, a, resultOK, nil)
		return reply(m)
	}
	be, ok := ch.executor(cmd.Name)
	if !ok {
		err := fmt.Errorf("%q is not a command this channel may run; it may run: %s", cmd.Name, strings.Join(ch.commandNames(h), ", "))
		h.record(ctx, a, resultUnknown, err)
		return reply(errorMessage("Unknown command", err.Error()))
	}
	a.executor = be.exec.Name()
	if _, ok := be.exec.(executor.Builder); ok && len(cmd.Args) == 0 && cmd.Filter == nil {
		return reply(h.build(ctx, a, ch, be, map[string]string{}))
	}
	return reply(h.runExecutor(ctx, a, ch, be, cmd, confirmed, draft))
}

// runExecutor checks and runs one command. A command whose executor asks
// for confirmation runs only when confirmed (a click on its Confirm button,
// which runs every check again); otherwise the reply asks for it. With a
// draft, a command that started an operation (Result.Ongoing) is followed:
// each state of the operation is shown in the draft, and the reply is its
// outcome.
func (h *Handler) runExecutor(ctx context.Context, a audit, ch *channel, be boundExecutor, cmd command.Command, confirmed bool, draft chat.Draft) chat.Message {
	title := be.typ + " " + strings.Join(cmd.Args, " ")
	c, err := h.check(ctx, &a, ch, be, cmd.Args)
	switch {
	case errors.Is(err, errUnanalyzable):
		return errorMessage("Cannot run "+title, errors.Unwrap(err).Error())
	case err != nil:
		return errorMessage("Denied by kubechat policy", strings.TrimPrefix(err.Error(), "denied by kubechat policy: "))
	}
	id, ns := c.id, c.ns
	if c.confirm && !confirmed {
		h.record(ctx, a, resultAwaitingConfirmation, nil)
		return h.confirmation(ctx, a, title, cmd, id, ns)
	}
	var queued func(int)
	if draft != nil {
		queued = func(position int) { draft.Show(queuedMessage(title, position)) }
	}
	res, err := h.execute(ctx, a, be, c, cmd.Args, queued)
	var busy errBusy
	switch {
	case errors.As(err, &busy):
		h.record(ctx, a, resultError, err)
		return errorMessage(title+": not run", err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		h.record(ctx, a, resultFailed, err)
		return errorMessage(title+" timed out", fmt.Sprintf("it did not finish within %s (the policy's timeout)", be.policy.Timeout))
	case err != nil:
		h.record(ctx, a, resultError, err)
		return errorMessage(title+" failed", err.Error())
	}
	switch {
	case res.Forbidden:
		h.record(ctx, a, resultRBACDenied, nil)
	case res.ExitCode != 0:
		h.record(ctx, a, resultFailed, nil)
	default:
		h.record(ctx, a, resultOK, nil)
	}
	w, follow := be.exec.(executor.Watcher)
	if !follow || draft == nil || !res.Ongoing || res.ExitCode != 0 {
		return h.resultMessage(ctx, a, be, cmd, title, id, res, true)
	}
	req := executor.Request{Args: cmd.Args, Namespace: ns, Identity: id, MaxOutputBytes: be.policy.MaxOutputBytes,
		Caller: executor.Caller{Platform: a.in.Platform, Channel: a.in.Channel.Name, UserID: a.in.UserID, UserName: a.in.UserName}}
	return h.follow(ctx, a, be, w, cmd, title, req, res, draft)
}

// FollowTimeout bounds how long a reply reports an operation it started.
const FollowTimeout = time.Hour

// follow shows the operation that res started in draft, state by state,
// and returns the reply once it ended, FollowTimeout passed, or ctx ended.
func (h *Handler) follow(ctx context.Context, a audit, be boundExecutor, w executor.Watcher, cmd command.Command, title string,
	req executor.Request, res executor.Result, draft chat.Draft,
) chat.Message {
	wctx, cancel := context.WithTimeout(ctx, FollowTimeout)
	defer cancel()
	for {
		draft.Show(h.resultMessage(ctx, a, be, cmd, title, req.Identity, res, false))
		next, done, err := w.Watch(wctx, req, res)
		switch {
		case ctx.Err() != nil:
			return h.resultMessage(ctx, a, be, cmd, title, req.Identity, res, false)
		case wctx.Err() != nil:
			m := h.resultMessage(ctx, a, be, cmd, title, req.Identity, res, false)
			m.Sections = append(m.Sections, chat.Section{Text: fmt.Sprintf("kubechat stopped following the operation after %s.", FollowTimeout)})
			return m
		case err != nil:
			return errorMessage(title+": lost track of the operation", err.Error())
		case done:
			return h.resultMessage(ctx, a, be, cmd, title, req.Identity, next, true)
		}
		res = next
	}
}

// resultMessage renders a command's result; with buttons, the executor's
// follow-ups and Run again under it.
func (h *Handler) resultMessage(ctx context.Context, a audit, be boundExecutor, cmd command.Command, title string, id executor.Identity, res executor.Result, buttons bool) chat.Message {
	out := filter(res.Output, cmd)
	m := chat.Message{Title: title, Level: chat.LevelSuccess}
	switch {
	case res.Forbidden:
		// What the command printed before or beside the refusal (the pods
		// of "get pods,secrets") is kept, as kubectl prints it.
		m.Title, m.Level = "Denied by Kubernetes RBAC", chat.LevelError
		m.Sections = append(m.Sections, chat.Section{Text: fmt.Sprintf("kubechat's policy allowed this, but Kubernetes refused it for %s:", id)})
	case res.ExitCode != 0:
		m.Level = chat.LevelError
	case res.Ongoing:
		m.Level = chat.LevelInfo
	}
	switch {
	case out != "":
		m.Sections = append(m.Sections, chat.Section{Code: out})
	case res.Forbidden:
	case res.Errors == "" && cmd.Filter != nil:
		m.Sections = append(m.Sections, chat.Section{Text: "No output line matches the filter."})
	case res.Errors == "":
		m.Sections = append(m.Sections, chat.Section{Text: "The command printed nothing."})
	}
	if res.Errors != "" {
		m.Sections = append(m.Sections, chat.Section{Code: res.Errors})
	}
	if res.Truncated {
		m.Sections = append(m.Sections, chat.Section{Text: fmt.Sprintf("Output stopped at the policy's limit of %d bytes.", be.policy.MaxOutputBytes)})
	}
	as := "as " + id.User
	if id.User == "" {
		as = "no cluster access"
	}
	m.Context = fmt.Sprintf("cluster: %s · %s · %d ms", h.cluster, as, time.Since(a.start).Milliseconds())
	if !buttons {
		return m
	}
	// One-shot: each result carries a fresh button, so a click replayed
	// (a retried delivery, a double click, a captured payload) runs nothing.
	bs := h.followUps(ctx, a, cmd, res.Buttons)
	if !res.Ongoing {
		if id, err := h.opts.Buttons.Put(ctx, button.Spec{Kind: buttonRun, Params: map[string]string{"command": encodeCommand(cmd)},
			Platform: a.in.Platform, Channel: a.in.Channel.ID, OneShot: true}); err == nil {
			bs = append(bs, chat.Button{Label: "Run again", ID: id})
		}
	}
	if len(bs) > 0 {
		m.Sections = append(m.Sections, chat.Section{Buttons: bs})
	}
	return m
}

// PodResult renders the result of a command that ran in a pod an earlier
// agent started (podrun adoption) as the reply to it, for channel to on
// platform, as the ServiceAccount serviceAccount. It carries no buttons:
// the channel's policy is not checked again for a command already run.
func (h *Handler) PodResult(platform string, to chat.Channel, title, serviceAccount string, res executor.Result) chat.Message {
	a := audit{in: chat.Inbound{Platform: platform, Channel: to}, start: time.Now()}
	m := h.resultMessage(context.Background(), a, boundExecutor{}, command.Command{}, title, executor.Identity{User: serviceAccount}, res, false)
	m.Context = fmt.Sprintf("cluster: %s · as %s · collected after a restart of kubechat", h.cluster, serviceAccount)
	return m
}

// checked is a command that Analyze described and the policy allowed,
// with the namespace and identity it runs as.
type checked struct {
	analysis executor.Analysis
	ns       string
	id       executor.Identity
	// confirm is set when it runs only once confirmed with a button.
	confirm bool
}

// errUnanalyzable wraps the error of an executor that cannot describe a
// command to the policy.
var errUnanalyzable = errors.New("cannot analyze")

type unanalyzable struct{ err error }

func (e unanalyzable) Error() string        { return e.err.Error() }
func (e unanalyzable) Unwrap() error        { return e.err }
func (e unanalyzable) Is(target error) bool { return target == errUnanalyzable }

// check describes args (Analyze), checks the description against be's
// policy and picks the identity to run as. A refusal is recorded in the
// audit and returned: an unanalyzable (errors.Is errUnanalyzable) or a
// policy refusal.
func (h *Handler) check(ctx context.Context, a *audit, ch *channel, be boundExecutor, args []string) (checked, error) {
	analysis, err := be.exec.Analyze(ctx, args)
	if err != nil {
		h.record(ctx, *a, resultPolicyDenied, err)
		return checked{}, unanalyzable{err}
	}
	a.verb = analysis.Verb
	ns, err := be.policy.Check(analysis)
	if err != nil {
		h.record(ctx, *a, resultPolicyDenied, err)
		return checked{}, err
	}
	id, err := h.identityFor(ch, a.in)
	if err != nil && executor.NeedsIdentity(be.exec) {
		h.record(ctx, *a, resultPolicyDenied, err)
		return checked{}, err
	}
	a.identity = id.User
	return checked{analysis: analysis, ns: ns, id: id, confirm: analysis.Confirm || be.policy.NeedsConfirm(analysis.Verb)}, nil
}

// execute runs a checked command as its identity, within the policy's
// timeout and output cap, once one of the agent's command slots is free
// (config commands:); while it waits, queued hears its place in line.
func (h *Handler) execute(ctx context.Context, a audit, be boundExecutor, c checked, args []string, queued func(position int)) (executor.Result, error) {
	release, err := h.slots.acquire(ctx, channelKey(a.in.Platform, a.in.Channel.ID), queued)
	if err != nil {
		return executor.Result{}, err
	}
	defer release()
	ectx, cancel := context.WithTimeout(ctx, be.policy.Timeout)
	defer cancel()
	caller := executor.Caller{Platform: a.in.Platform, Channel: a.in.Channel.Name, UserID: a.in.UserID, UserName: a.in.UserName,
		ChannelID: a.in.Channel.ID, ThreadChannel: a.in.Thread.Channel, ThreadID: a.in.Thread.ID, ThreadRoot: a.in.Thread.Thread}
	if c.analysis.LinksThread {
		caller.ThreadURL = h.threadURL(ectx, a.in)
	}
	return be.exec.Execute(ectx, executor.Request{
		Args:           args,
		Namespace:      c.ns,
		Identity:       c.id,
		MaxOutputBytes: be.policy.MaxOutputBytes,
		Caller:         caller,
	})
}

// threadURL is the address of the thread in's reply goes to, or "" where
// its platform cannot say (chat.Permalinker) or it is in no thread.
func (h *Handler) threadURL(ctx context.Context, in chat.Inbound) string {
	p, ok := h.opts.Platforms[in.Platform]
	if !ok || in.Thread.ID == "" {
		return ""
	}
	ref := chat.ThreadRef(in.Thread)
	if ref.Channel == "" {
		ref.Channel = in.Channel.ID
	}
	url, err := chat.Permalink(ctx, p, ref)
	if err != nil {
		h.log.Warn("no link to the command's thread", "platform", in.Platform, "channel", in.Channel.Name, "err", err)
		return ""
	}
	return url
}

// AlertButtons are the buttons under a failure alert in channel to
// (alerting.AlertButtoner): the follow-ups its event suggests (an Argo CD
// Application's Sync, Diff, History, a link to it), then "Ask AI" and
// "Open issue".
func (h *Handler) AlertButtons(ctx context.Context, ev event.Event, platform string, to chat.Channel) []chat.Button {
	out := append(h.suggestedButtons(ctx, ev, platform, to), h.askButton(ctx, ev, platform, to)...)
	return append(out, h.issueButton(ctx, ev, platform, to)...)
}

// suggestedButtons turns the follow-ups ev suggests into buttons for
// channel to: links, and the commands the channel binds an executor for
// and its policy allows. A click runs the command through policy,
// identity and Confirm again, as the one who clicked.
func (h *Handler) suggestedButtons(ctx context.Context, ev event.Event, platform string, to chat.Channel) []chat.Button {
	ch := h.channels[channelKey(platform, to.ID)]
	var out []chat.Button
	for _, b := range ev.Buttons {
		cb := chat.Button{Label: b.Label, URL: b.URL}
		if b.Primary {
			cb.Style = chat.ButtonPrimary
		}
		if b.URL == "" {
			if len(b.Command) == 0 {
				continue
			}
			be, ok := ch.executor(b.Command[0])
			if !ok {
				continue
			}
			analysis, err := be.exec.Analyze(ctx, b.Command[1:])
			if err != nil {
				continue
			}
			if _, err := be.policy.Check(analysis); err != nil {
				continue
			}
			cmd := command.Command{Name: b.Command[0], Args: b.Command[1:]}
			id, err := h.opts.Buttons.Put(ctx, button.Spec{Kind: buttonRun, Params: map[string]string{"command": encodeCommand(cmd)},
				Platform: platform, Channel: to.ID, OneShot: true})
			if err != nil {
				h.log.Warn("alert button not issued", "label", b.Label, "err", err)
				continue
			}
			cb.ID = id
		}
		out = append(out, cb)
	}
	return out
}

// followUps turns an executor's follow-up buttons into chat buttons. Each
// command button is a one-shot "run" button of the same executor word (and
// cluster) as cmd, so a click goes through parse, policy and identity again.
func (h *Handler) followUps(ctx context.Context, a audit, cmd command.Command, bs []executor.Button) []chat.Button {
	var out []chat.Button
	for _, b := range bs {
		if b.URL == "" && len(b.Args) == 0 {
			continue // a link without its URL; never a bare executor run
		}
		cb := chat.Button{Label: b.Label, URL: b.URL}
		if b.Primary {
			cb.Style = chat.ButtonPrimary
		}
		if b.URL == "" {
			follow := command.Command{Cluster: cmd.Cluster, Name: cmd.Name, Args: b.Args}
			id, err := h.opts.Buttons.Put(ctx, button.Spec{Kind: buttonRun, Params: map[string]string{"command": encodeCommand(follow)},
				Platform: a.in.Platform, Channel: a.in.Channel.ID, OneShot: true})
			if err != nil {
				continue
			}
			cb.ID = id
		}
		out = append(out, cb)
	}
	return out
}

// Button kinds. A "run" button ("Run again") and a "confirm" button carry
// the command, as argv (encodeCommand), in their "command" parameter; a
// "cancel" button names the confirm button it voids.
const (
	buttonRun     = "run"
	buttonConfirm = "confirm"
	buttonCancel  = "cancel"
)

// ConfirmTTL is how long a Confirm button works.
const ConfirmTTL = 10 * time.Minute

// confirmation asks for a click before a command that changes something
// runs. Both buttons work once; whoever clicks Confirm is checked again, as
// if they had typed the command.
func (h *Handler) confirmation(ctx context.Context, a audit, title string, cmd command.Command, id executor.Identity, ns string) chat.Message {
	where := ""
	if ns != "" {
		where = " (default namespace " + ns + ")"
	}
	m := chat.Message{Title: "Confirm: " + title, Level: chat.LevelWarning, Sections: []chat.Section{{
		Text: fmt.Sprintf("This changes the cluster. It runs as %s%s once confirmed. The buttons work once, for %s.", id.User, where, ConfirmTTL),
	}}}
	confirm, err := h.opts.Buttons.Put(ctx, button.Spec{Kind: buttonConfirm, Params: map[string]string{"command": encodeCommand(cmd)},
		Platform: a.in.Platform, Channel: a.in.Channel.ID, OneShot: true, TTL: ConfirmTTL})
	if err != nil {
		return errorMessage("Cannot ask for confirmation", err.Error())
	}
	cancel, err := h.opts.Buttons.Put(ctx, button.Spec{Kind: buttonCancel, Params: map[string]string{"confirm": confirm, "title": title},
		Platform: a.in.Platform, Channel: a.in.Channel.ID, OneShot: true, TTL: ConfirmTTL})
	if err != nil {
		return errorMessage("Cannot ask for confirmation", err.Error())
	}
	m.Sections = append(m.Sections, chat.Section{Buttons: []chat.Button{
		{Label: "Confirm", ID: confirm, Style: chat.ButtonDanger},
		{Label: "Cancel", ID: cancel},
	}})
	return m
}

// storedCommand is a command as a button keeps it: argv, never text to
// parse again, so every argument comes back as it was given.
type storedCommand struct {
	Cluster string   `json:"cluster,omitempty"`
	Name    string   `json:"name"`
	Args    []string `json:"args,omitempty"`
	Filter  string   `json:"filter,omitempty"`
	Invert  bool     `json:"invert,omitempty"`
}

func encodeCommand(c command.Command) string {
	s := storedCommand{Cluster: c.Cluster, Name: c.Name, Args: c.Args, Invert: c.InvertFilter}
	if c.Filter != nil {
		s.Filter = c.Filter.String()
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func decodeCommand(text string) (command.Command, error) {
	var s storedCommand
	if err := json.Unmarshal([]byte(text), &s); err != nil || s.Name == "" {
		return command.Command{}, fmt.Errorf("this button holds no command kubechat can read")
	}
	c := command.Command{Cluster: s.Cluster, Name: s.Name, Args: s.Args, InvertFilter: s.Invert}
	if s.Filter != "" {
		re, err := regexp.Compile(s.Filter)
		if err != nil {
			return command.Command{}, fmt.Errorf("this button's filter does not compile: %w", err)
		}
		c.Filter = re
	}
	return c, nil
}

// who names the user of in for a reply.
func who(in chat.Inbound) string {
	if in.UserName != "" {
		return in.UserName
	}
	return in.UserID
}

// filter keeps the output lines that match the command's filter.
func filter(out string, cmd command.Command) string {
	if cmd.Filter == nil {
		return out
	}
	var kept []string
	for _, line := range strings.SplitAfter(out, "\n") {
		if line != "" && cmd.Filter.MatchString(strings.TrimRight(line, "\n")) != cmd.InvertFilter {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "")
}

func errorMessage(title, text string) chat.Message {
	return chat.Message{Title: title, Level: chat.LevelError, Sections: []chat.Section{{Text: text}}}
}

// identityFor is the user's mapped identity, else the channel's.
func (h *Handler) identityFor(ch *channel, in chat.Inbound) (executor.Identity, error) {
	if u, ok := h.users[userKey(in.Platform, in.UserID)]; ok && u.Identity != nil {
		return identity(*u.Identity), nil
	}
	if ch.cfg.Identity == nil {
		return executor.Identity{}, fmt.Errorf("channel %q has no Kubernetes identity to run commands as", ch.cfg.Name)
	}
	return identity(*ch.cfg.Identity), nil
}

func identity(id config.Identity) executor.Identity {
	user, groups := id.UserInfo()
	return executor.Identity{User: user, Groups: groups}
}

func (h *Handler) isAdmin(in chat.Inbound) bool {
	u, ok := h.users[userKey(in.Platform, in.UserID)]
	return ok && u.Admin
}

// executor finds the bound executor by name, else by type ("kubectl" finds "kubectl-read").
func (ch *channel) executor(word string) (boundExecutor, bool) {
	if ch == nil {
		return boundExecutor{}, false
	}
	for _, be := range ch.executors {
		if be.exec.Name() == word {
			return be, true
		}
	}
	for _, be := range ch.executors {
		if be.typ == word {
			return be, true
		}
	}
	return boundExecutor{}, false
}

func (ch *channel) commandNames(h *Handler) []string {
	names := slices.Sorted(maps.Keys(h.builtins()))
	if ch != nil {
		for _, be := range ch.executors {
			names = append(names, be.typ)
		}
	}
	return slices.Compact(names)
}

func channelKey(platform, id string) string { return platform + "\x00" + id }

// configuredChannel names an inbound channel as the config does. Platforms
// report their own ids (Slack: C0123ABCD) and, when they know it, the name;
// config may use either, so policy lookups and the channel a button is
// bound to agree whichever form a channel was configured in.
func (h *Handler) configuredChannel(in chat.Inbound) chat.Channel {
	for _, key := range []string{in.Channel.ID, in.Channel.Name, "#" + in.Channel.Name} {
		if c := h.channels[channelKey(in.Platform, key)]; c != nil && key != "" && key != "#" {
			return chat.Channel{Name: c.cfg.Name, ID: c.cfg.ID}
		}
	}
	return in.Channel
}
func userKey(platform, id string) string { return platform + "\x00" + id }

// version is the line ping answers with.
func (h *Handler) version(ctx context.Context) string {
	v := "kubechat " + buildinfo.String()
	if h.opts.KubernetesVersion != nil {
		if kv, err := h.opts.KubernetesVersion(ctx); err == nil {
			v += ", Kubernetes " + kv
		}
	}
	return v
}
