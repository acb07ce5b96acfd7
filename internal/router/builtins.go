package router

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kubechat/kubechat/internal/chat"
)

// builtin is a command the router answers itself.
type builtin struct {
	help  string
	admin bool
	run   func(ctx context.Context, ch *channel, in chat.Inbound, args []string) (chat.Message, error)
}

func (r *Router) builtins() map[string]builtin {
	return map[string]builtin{
		"ping":          {help: "answer with the cluster name and versions", run: r.ping},
		"help":          {help: "list what this channel may run", run: r.help},
		"list":          {help: "list executors|sources|actions|aliases", run: r.list},
		"notifications": {help: "notifications on|off|status for this channel (on/off: admin)", run: r.notifications},
		"status":        {help: "show the agent's parts and their health", run: r.status},
		"show":          {help: "show config: the agent's config, secrets redacted (admin)", admin: true, run: r.show},
		"actions":       {help: "actions enable|disable NAME: switch an action on or off (admin)", admin: true, run: r.actionsCommand},
	}
}

func (r *Router) ping(ctx context.Context, _ *channel, _ chat.Inbound, args []string) (chat.Message, error) {
	if len(args) > 0 {
		return chat.Message{}, fmt.Errorf("ping takes no arguments")
	}
	return chat.Message{Title: fmt.Sprintf("pong from cluster %s (%s)", r.cluster, r.version(ctx)), Level: chat.LevelSuccess}, nil
}

func (r *Router) help(_ context.Context, ch *channel, _ chat.Inbound, _ []string) (chat.Message, error) {
	var b strings.Builder
	b.WriteString("Built-in commands:\n")
	bs := r.builtins()
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

func (r *Router) list(_ context.Context, _ *channel, _ chat.Inbound, args []string) (chat.Message, error) {
	if len(args) != 1 {
		return chat.Message{}, fmt.Errorf("usage: list executors|sources|actions|aliases")
	}
	var lines []string
	switch args[0] {
	case "executors":
		for _, e := range r.cfg.Executors {
			lines = append(lines, fmt.Sprintf("%s (type %s)", e.Name, e.Type))
		}
	case "sources":
		for _, s := range r.cfg.Sources {
			lines = append(lines, fmt.Sprintf("%s (type %s)", s.Name, s.Type))
		}
	case "actions":
		lines = r.listActions()
	case "aliases":
		for _, name := range slices.Sorted(maps.Keys(r.aliases)) {
			lines = append(lines, name+" → "+strings.Join(r.aliases[name], " "))
		}
	default:
		return chat.Message{}, fmt.Errorf("cannot list %q: use executors, sources, actions or aliases", args[0])
	}
	if len(lines) == 0 {
		lines = []string{"none configured"}
	}
	return chat.Message{Title: args[0], Sections: []chat.Section{{Text: strings.Join(lines, "\n")}}}, nil
}

// NotificationsKey is the state key of a channel's notification switch.
func NotificationsKey(platform, channelID string) string {
	return "notifications." + platform + "." + channelID
}

func (r *Router) notificationsOn(platform, channelID string) bool {
	if r.opts.State == nil {
		return true
	}
	v, _ := r.opts.State.Get(NotificationsKey(platform, channelID))
	return v != "off"
}

func (r *Router) notifications(ctx context.Context, _ *channel, in chat.Inbound, args []string) (chat.Message, error) {
	if len(args) != 1 || !slices.Contains([]string{"on", "off", "status"}, args[0]) {
		return chat.Message{}, fmt.Errorf("usage: notifications on|off|status")
	}
	if args[0] == "status" {
		state := "on"
		if !r.notificationsOn(in.Platform, in.Channel.ID) {
			state = "off"
		}
		return chat.Message{Title: "Notifications are " + state + " in this channel"}, nil
	}
	if !r.isAdmin(in) {
		return chat.Message{}, fmt.Errorf("notifications %s is an admin command; ask an admin (users[].admin in the config)", args[0])
	}
	if r.opts.State == nil {
		return chat.Message{}, fmt.Errorf("this agent has no state store (no cluster connection)")
	}
	value := ""
	if args[0] == "off" {
		value = "off"
	}
	if err := r.opts.State.Set(ctx, NotificationsKey(in.Platform, in.Channel.ID), value); err != nil {
		return chat.Message{}, err
	}
	return chat.Message{Title: "Notifications are now " + args[0] + " in this channel", Level: chat.LevelSuccess}, nil
}

func (r *Router) status(_ context.Context, _ *channel, _ chat.Inbound, _ []string) (chat.Message, error) {
	fields := []chat.Field{{Name: "Cluster", Value: r.cluster}, {Name: "Version", Value: r.version(context.Background())}}
	fields = append(fields, chat.Field{Name: "Leader", Value: "this replica (leader election is not configured)"})
	if r.opts.Health != nil {
		health, ready := "all healthy", "all ready"
		if err := r.opts.Health.Healthy(); err != nil {
			health = err.Error()
		}
		if err := r.opts.Health.Ready(); err != nil {
			ready = err.Error()
		}
		fields = append(fields, chat.Field{Name: "Health", Value: health}, chat.Field{Name: "Readiness", Value: ready})
	}
	var platforms []string
	for _, p := range r.cfg.Platforms {
		platforms = append(platforms, p.Name+" ("+p.Type+")")
	}
	fields = append(fields, chat.Field{Name: "Platforms", Value: strings.Join(platforms, ", ")},
		chat.Field{Name: "Delivery queue", Value: "direct delivery: no queue"})
	return chat.Message{Title: "kubechat status", Sections: []chat.Section{{Fields: fields}}}, nil
}

func (r *Router) show(_ context.Context, _ *channel, _ chat.Inbound, args []string) (chat.Message, error) {
	if len(args) != 1 || args[0] != "config" {
		return chat.Message{}, fmt.Errorf("usage: show config")
	}
	b, err := r.cfg.Redacted()
	if err != nil {
		return chat.Message{}, err
	}
	return chat.Message{Title: "Configuration (secrets redacted)", Sections: []chat.Section{{Code: string(b)}}}, nil
}
