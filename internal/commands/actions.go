package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kubechat/kubechat/internal/action"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

// Actions ("when an event matches, run a command and post its output with
// the alert") run as the channel the alert was delivered to: the channel's
// bound executors, policy and identity, exactly as if a user without a
// personal identity had typed the command. The alerting side decides when
// (after the alert was delivered) and posts the reply into its thread.

// boundAction is a configured action, parsed.
type boundAction struct {
	cfg  config.Action
	tmpl action.Template
}

// switchKey is the state key of an action's switch ("on" or "off"),
// written by "actions enable|disable NAME".
func switchKey(name string) string { return "action." + name }

// actionEnabled is the switch from chat when set, else the config's.
func (h *Handler) actionEnabled(a config.Action) bool {
	if v, ok := h.opts.State.Get(switchKey(a.Name)); ok && v != "" {
		return v == "on"
	}
	return a.Enabled == nil || *a.Enabled
}

func (h *Handler) buildActions() error {
	h.actions = map[string]boundAction{}
	for _, a := range h.cfg.Actions {
		t, err := action.Parse(a.Command, h.aliases)
		if err != nil {
			return fmt.Errorf("action %q: %w", a.Name, err)
		}
		h.actions[a.Name] = boundAction{cfg: a, tmpl: t}
	}
	return nil
}

// Triggered names the actions bound to channel ch that ev triggers, as
// they are switched on or off now.
func (h *Handler) Triggered(ev event.Event, platform string, ch chat.Channel) []string {
	c := h.channels[channelKey(platform, ch.ID)]
	if c == nil {
		return nil
	}
	var out []string
	for _, name := range c.cfg.Bindings.Actions {
		act, ok := h.actions[name]
		if ok && action.Matches(ev, act.cfg.Source, act.cfg.Reasons, act.cfg.Kinds) && h.actionEnabled(act.cfg) {
			out = append(out, name)
		}
	}
	return out
}

// Run runs the action name for ev as channel ch and returns the reply to
// post in the thread of alert. An operation the command starts (a rollout
// to follow) is followed to its end: each of its states is shown in draft,
// and the outcome is the reply, which replaces the draft in the thread.
func (h *Handler) Run(ctx context.Context, name string, ev event.Event, platform string, ch chat.Channel, alert chat.MessageRef, draft chat.Draft) chat.Message {
	in := chat.Inbound{Platform: platform, Channel: ch, UserName: "action:" + name, Thread: alert}
	a := audit{in: in, start: time.Now()}
	title := "Action " + name
	act, ok := h.actions[name]
	if !ok {
		err := fmt.Errorf("action %q is not configured", name)
		h.record(ctx, a, resultUnknown, err)
		return h.withCluster(errorMessage(title+" did not run", err.Error()))
	}
	a.executor = act.tmpl.Name()
	cmd, err := act.tmpl.Expand(ev)
	if err != nil {
		h.record(ctx, a, resultSyntax, err)
		return h.withCluster(errorMessage(title+" did not run", err.Error()))
	}
	c := h.channels[channelKey(platform, ch.ID)]
	be, ok := c.executor(cmd.Name)
	if !ok {
		err := fmt.Errorf("executor %q is not bound to this channel (bindings.executors), so its actions cannot run here", cmd.Name)
		h.record(ctx, a, resultUnknown, err)
		return h.withCluster(errorMessage(title+" did not run", err.Error()))
	}
	a.executor = be.exec.Name()
	m := h.runExecutor(ctx, a, c, be, cmd, false, titled{draft, title})
	m.Title = title + ": " + m.Title
	return h.withCluster(m)
}

// titled shows an action's drafts under the action's name, as its reply.
type titled struct {
	chat.Draft
	action string
}

func (t titled) Show(m chat.Message) {
	m.Title = t.action + ": " + m.Title
	t.Draft.Show(m)
}

func (h *Handler) withCluster(m chat.Message) chat.Message {
	if m.Context == "" {
		m.Context = "cluster: " + h.cluster
	}
	return m
}

// actionsCommand is the "actions enable|disable NAME" built-in (admin).
func (h *Handler) actionsCommand(ctx context.Context, _ *channel, _ chat.Inbound, args []string) (chat.Message, error) {
	if len(args) != 2 || (args[0] != "enable" && args[0] != "disable") {
		return chat.Message{}, fmt.Errorf("usage: actions enable|disable NAME")
	}
	act, ok := h.actions[args[1]]
	if !ok {
		var names []string
		for _, a := range h.cfg.Actions {
			names = append(names, a.Name)
		}
		known := "none configured"
		if len(names) > 0 {
			known = strings.Join(names, ", ")
		}
		return chat.Message{}, fmt.Errorf("unknown action %q (known: %s)", args[1], known)
	}
	value, word := "on", "enabled"
	if args[0] == "disable" {
		value, word = "off", "disabled"
	}
	if err := h.opts.State.Set(ctx, switchKey(act.cfg.Name), value); err != nil {
		return chat.Message{}, err
	}
	return chat.Message{Title: fmt.Sprintf("Action %s is now %s", act.cfg.Name, word), Level: chat.LevelSuccess}, nil
}

// listActions is "list actions": each action with its switch.
func (h *Handler) listActions() []string {
	var lines []string
	for _, a := range h.cfg.Actions {
		state := "enabled"
		if !h.actionEnabled(a) {
			state = "disabled"
		}
		lines = append(lines, fmt.Sprintf("%s: on %s run %q (%s)", a.Name, a.Source, a.Command, state))
	}
	return lines
}
