package commands

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kubechat/kubechat/internal/chat"
)

// builtin is a command the handler answers itself.
type builtin struct {
	help  string
	admin bool
	run   func(ctx context.Context, ch *channel, in chat.Inbound, args []string) (chat.Message, error)
}

func (h *Handler) builtins() map[string]builtin {
	return map[string]builtin{
		"ping":          {help: "answer with the cluster name and versions", run: h.ping},
		"help":          {help: "list what this channel may run", run: h.help},
		"list":          {help: "list executors|sources|actions|aliases", run: h.list},
		"notifications": {help: "notifications on|off|status for this channel (on/off: admin)", run: h.notifications},
		"status":        {help: "show the agent's parts and their health", run: h.status},
		"show":          {help: "show config: the agent's config, secrets redacted (admin)", admin: true, run: h.show},
		"actions":       {help: "actions enable|disable NAME: switch an action on or off (admin)", admin: true, run: h.actionsCommand},
	}
}

func (h *Handler) ping(ctx context.Context, _ *channel, _ chat.Inbound, args []string) (chat.Message, error) {
	if len(args) > 0 {
		return chat.Message{}, fmt.Errorf("ping takes no arguments")
	}
	return chat.Message{Title: fmt.Sprintf("pong from cluster %s (%s)", h.cluster, h.version(ctx)), Level: chat.LevelSuccess}, nil
}

func (h *Handler) help(_ context.Context, ch *channel, _ chat.Inbound, _ []string) (chat.Message, error) {
	var b strings.Builder
	b.WriteString("Built-in commands:\n")
	bs := h.builtins()
	for _, name := range slices.Sorted(maps.Keys(bs)) {
		fmt.Fprintf(&b, "• %s: %s\n", name, bs[name].help)
	}
	if ch != nil && len(ch.executors) > 0 {
		b.WriteString("\nExecutors in this channel:\n")
		for _, be := range ch.executors {
			verbs := be.policy.AllowedVerbs()
			ns := "any namespace"
			if len(be.policy.Namespaces) > 0 {
				ns = "namespaces " + strings.Join(be.policy.Namespaces, ", ")
			}
			fmt.Fprintf(&b, "• %s (%s): %s; %s\n", be.typ, be.exec.Name(), strings.Join(verbs, ", "), ns)
		}
	} else {
		b.WriteString("\nNo executor is bound to this channel.\n")
	}
	b.WriteString("\nPrefix --cluster NAME to address one cluster; end with | grep PATTERN, or start with --filter PATTERN, to filter output.")
	return chat.Message{Title: "kubechat help", Sections: []chat.Section{{Text: b.String()}}}, nil
}

func (h *Handler) list(_ context.Context, _ *channel, _ chat.Inbound, args []string) (chat.Message, error) {
	if len(args) != 1 {
		return chat.Message{}, fmt.Errorf("usage: list executors|sources|actions|aliases")
	}
	var lines []string
	switch args[0] {
	case "executors":
		for _, e := range h.cfg.Executors {
			lines = append(lines, fmt.Sprintf("%s (type %s)", e.Name, e.Type))
		}
	case "sources":
		for _, s := range h.cfg.Sources {
			lines = append(lines, fmt.Sprintf("%s (type %s)", s.Name, s.Type))
		}
	case "actions":
		lines = h.listActions()
	case "aliases":
		for _, name := range slices.Sorted(maps.Keys(h.aliases)) {
			lines = append(lines, name+" → "+strings.Join(h.aliases[name], " "))
		}
	default:
		return chat.Message{}, fmt.Errorf("cannot list %q: use executors, sources, actions or aliases", args[0])
	}
	if len(lines) == 0 {
		lines = []string{"none configured"}
	}
	return chat.Message{Title: args[0], Sections: []chat.Section{{Text: strings.Join(lines, "\n")}}}, nil
}

func (h *Handler) notifications(ctx context.Context, _ *channel, in chat.Inbound, args []string) (chat.Message, error) {
	if len(args) != 1 || !slices.Contains([]string{"on", "off", "status"}, args[0]) {
		return chat.Message{}, fmt.Errorf("usage: notifications on|off|status")
	}
	if h.opts.Alerts == nil {
		return chat.Message{}, fmt.Errorf("this agent sends no alerts")
	}
	if args[0] == "status" {
		state := "on"
		if !h.opts.Alerts.NotificationsOn(in.Platform, in.Channel.ID) {
			state = "off"
		}
		return chat.Message{Title: "Notifications are " + state + " in this channel"}, nil
	}
	if !h.isAdmin(in) {
		return chat.Message{}, fmt.Errorf("notifications %s is an admin command; ask an admin (users[].admin in the config)", args[0])
	}
	if err := h.opts.Alerts.SetNotifications(ctx, in.Platform, in.Channel.ID, args[0] == "on"); err != nil {
		return chat.Message{}, err
	}
	return chat.Message{Title: "Notifications are now " + args[0] + " in this channel", Level: chat.LevelSuccess}, nil
}

func (h *Handler) status(_ context.Context, _ *channel, _ chat.Inbound, _ []string) (chat.Message, error) {
	fields := []chat.Field{{Name: "Cluster", Value: h.cluster}, {Name: "Version", Value: h.version(context.Background())}}
	if h.opts.Health != nil {
		health, ready := "all healthy", "all ready"
		if err := h.opts.Health.Healthy(); err != nil {
			health = err.Error()
		}
		if err := h.opts.Health.Ready(); err != nil {
			ready = err.Error()
		}
		fields = append(fields, chat.Field{Name: "Health", Value: health}, chat.Field{Name: "Readiness", Value: ready})
	}
	leader := "this replica (leader election is not configured)"
	if h.cfg.HA.LeaderElection {
		leader = "this replica (only the leader answers)"
	}
	fields = append(fields, chat.Field{Name: "Leader", Value: leader})
	var platforms []string
	for _, p := range h.cfg.Platforms {
		platforms = append(platforms, p.Name+" ("+p.Type+")")
	}
	fields = append(fields, chat.Field{Name: "Platforms", Value: strings.Join(platforms, ", ")})
	if h.opts.Alerts != nil {
		fields = append(fields, chat.Field{Name: "Delivery queue", Value: fmt.Sprintf("%d messages waiting", h.opts.Alerts.Pending())})
	}
	return chat.Message{Title: "kubechat status", Sections: []chat.Section{{Fields: fields}}}, nil
}

func (h *Handler) show(_ context.Context, _ *channel, _ chat.Inbound, args []string) (chat.Message, error) {
	if len(args) != 1 || args[0] != "config" {
		return chat.Message{}, fmt.Errorf("usage: show config")
	}
	b, err := h.cfg.Redacted()
	if err != nil {
		return chat.Message{}, err
	}
	return chat.Message{Title: "Configuration (secrets redacted)", Sections: []chat.Section{{Code: string(b)}}}, nil
}
