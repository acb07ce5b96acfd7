package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	amlabels "github.com/prometheus/alertmanager/pkg/labels"

	"github.com/kubechat/kubechat/internal/autorun"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

// Actions ("when an event matches, run a command and post its output with
// the alert") run after the alert was delivered, as the channel it was
// delivered to: the channel's bound executors, policy and identity, exactly
// as if a user without a personal identity had typed the command, and the
// output goes into the alert's thread. They run on the router's own workers,
// never on a delivery queue, so a slow command does not hold alerts back.

// boundAction is a configured action, parsed.
type boundAction struct {
	cfg  config.Action
	tmpl autorun.Template
}

// ActionKey is the state key of an action's switch ("on" or "off"),
// written by "actions enable|disable NAME".
func ActionKey(name string) string { return "action." + name }

// actionEnabled is the switch from chat when set, else the config's.
func (r *Router) actionEnabled(a config.Action) bool {
	if v, ok := r.state.Get(ActionKey(a.Name)); ok && v != "" {
		return v == "on"
	}
	return a.Enabled == nil || *a.Enabled
}

func (r *Router) buildActions() error {
	r.actions = map[string]boundAction{}
	for _, a := range r.cfg.Actions {
		t, err := autorun.Parse(a.Command, r.aliases)
		if err != nil {
			return fmt.Errorf("action %q: %w", a.Name, err)
		}
		r.actions[a.Name] = boundAction{cfg: a, tmpl: t}
	}
	return nil
}

// autorunWorkers is how many actions run at once.
const autorunWorkers = 2

// jobQueue is an unbounded FIFO of action runs: a delivery callback only
// appends, it never waits. busy counts the runs taken and not yet done,
// so that a drain waits for them as it waits for queued ones.
type jobQueue struct {
	mu    sync.Mutex
	jobs  []func(context.Context)
	busy  int
	ready chan struct{}
}

func newJobQueue() *jobQueue { return &jobQueue{ready: make(chan struct{}, 1)} }

func (q *jobQueue) push(f func(context.Context)) {
	q.mu.Lock()
	q.jobs = append(q.jobs, f)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *jobQueue) pop() (func(context.Context), bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.jobs) == 0 {
		return nil, false
	}
	f := q.jobs[0]
	q.jobs = q.jobs[1:]
	q.busy++
	if len(q.jobs) > 0 {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return f, true
}

// done marks a run taken by pop as finished.
func (q *jobQueue) done() {
	q.mu.Lock()
	q.busy--
	q.mu.Unlock()
}

// len counts the runs queued or running.
func (q *jobQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.jobs) + q.busy
}

// runJobs runs queued actions until ctx is done.
func (r *Router) runJobs(ctx context.Context) {
	for {
		if f, ok := r.jobs.pop(); ok {
			f(ctx)
			r.jobs.done()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-r.jobs.ready:
		}
	}
}

// actionsFor are the actions bound to s's channel that ev triggers, as
// they are switched on or off now: the switch counts when the event is
// routed, not when its alert is finally delivered.
func (r *Router) actionsFor(ev event.Event, s *sender) []boundAction {
	ch := r.channels[channelKey(s.b.platform.Name(), s.b.channel.ID)]
	if ch == nil {
		return nil
	}
	var out []boundAction
	for _, name := range ch.cfg.Bindings.Actions {
		act, ok := r.actions[name]
		if ok && autorun.Matches(ev, act.cfg.Source, act.cfg.Reasons) && r.actionEnabled(act.cfg) {
			out = append(out, act)
		}
	}
	return out
}

// triggerActions queues acts (from actionsFor) for ev in s's channel;
// their output goes into the thread of ref, the alert's message.
func (r *Router) triggerActions(acts []boundAction, ev event.Event, s *sender, ref chat.MessageRef) {
	ch := r.channels[channelKey(s.b.platform.Name(), s.b.channel.ID)]
	for _, act := range acts {
		r.jobs.push(func(ctx context.Context) {
			m := r.runAction(ctx, act, ch, s, ev, ref)
			m.Thread = &ref
			r.enqueue(s, actionKey(ref, act.cfg.Name), func() (chat.Message, bool) { return m, true }, nil)
		})
	}
}

// actionKey is the stable identity of an action's reply under the alert ref.
func actionKey(ref chat.MessageRef, action string) string {
	h := sha256.Sum256([]byte(ref.Platform + "\x00" + ref.Channel + "\x00" + ref.ID + "\x00" + action))
	return "action." + hex.EncodeToString(h[:12])
}

// runAction runs one action as the channel and returns the reply to post.
func (r *Router) runAction(ctx context.Context, act boundAction, ch *channel, s *sender, ev event.Event, ref chat.MessageRef) chat.Message {
	in := chat.Inbound{Platform: s.b.platform.Name(), Channel: s.b.channel, UserName: "action:" + act.cfg.Name, Thread: ref}
	a := audit{in: in, start: time.Now(), executor: act.tmpl.Name()}
	title := "Action " + act.cfg.Name
	cmd, err := act.tmpl.Expand(ev)
	if err != nil {
		r.record(ctx, a, resultSyntax, err)
		return r.withCluster(errorMessage(title+" did not run", err.Error()))
	}
	be, ok := ch.executor(cmd.Name)
	if !ok {
		err := fmt.Errorf("executor %q is not bound to this channel (bindings.executors), so its actions cannot run here", cmd.Name)
		r.record(ctx, a, resultUnknown, err)
		return r.withCluster(errorMessage(title+" did not run", err.Error()))
	}
	a.executor = be.exec.Name()
	m := r.runExecutor(ctx, a, ch, be, cmd, false)
	m.Title = title + ": " + m.Title
	return r.withCluster(m)
}

func (r *Router) withCluster(m chat.Message) chat.Message {
	if m.Context == "" {
		m.Context = "cluster: " + r.cluster
	}
	return m
}

// actionsCommand is the "actions enable|disable NAME" built-in (admin).
func (r *Router) actionsCommand(ctx context.Context, _ *channel, _ chat.Inbound, args []string) (chat.Message, error) {
	if len(args) != 2 || (args[0] != "enable" && args[0] != "disable") {
		return chat.Message{}, fmt.Errorf("usage: actions enable|disable NAME")
	}
	act, ok := r.actions[args[1]]
	if !ok {
		var names []string
		for _, a := range r.cfg.Actions {
			names = append(names, a.Name)
		}
		known := "none configured"
		if len(names) > 0 {
			known = strings.Join(names, ", ")
		}
		return chat.Message{}, fmt.Errorf("unknown action %q (known: %s)", args[1], known)
	}
	if r.opts.State == nil {
		return chat.Message{}, fmt.Errorf("this agent has no state store (no cluster connection)")
	}
	value, word := "on", "enabled"
	if args[0] == "disable" {
		value, word = "off", "disabled"
	}
	if err := r.state.Set(ctx, ActionKey(act.cfg.Name), value); err != nil {
		return chat.Message{}, err
	}
	return chat.Message{Title: fmt.Sprintf("Action %s is now %s", act.cfg.Name, word), Level: chat.LevelSuccess}, nil
}

// listActions is "list actions": each action with its switch.
func (r *Router) listActions() []string {
	var lines []string
	for _, a := range r.cfg.Actions {
		state := "enabled"
		if !r.actionEnabled(a) {
			state = "disabled"
		}
		lines = append(lines, fmt.Sprintf("%s: on %s run %q (%s)", a.Name, a.Source, a.Command, state))
	}
	return lines
}

// compileMatchers parses a channel's label matchers.
func compileMatchers(ms []string) (amlabels.Matchers, error) {
	var out amlabels.Matchers
	for _, m := range ms {
		pm, err := config.ParseMatcher(m)
		if err != nil {
			return nil, err
		}
		out = append(out, pm)
	}
	return out, nil
}

// admits reports whether b takes ev: alerts (events with labels) must
// match all of the channel's matchers. A resolution always passes: it only
// edits a message the channel already holds.
func (b binding) admits(ev event.Event) bool {
	if len(b.matchers) == 0 || ev.Labels == nil || ev.Transition == event.Resolved {
		return true
	}
	for _, m := range b.matchers {
		if !m.Matches(ev.Labels[m.Name]) {
			return false
		}
	}
	return true
}
