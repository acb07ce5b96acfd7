package commands

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kubechat/kubechat/internal/button"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/executor"
)

// The command builder: a bare "@kubechat kubectl" answers with selects for
// verb → resource → namespace → name, each list built from the policy and
// from API discovery as the caller's identity. Every choice travels in a
// signed button; the finished command is checked like typed text.

const buttonBuild = "build"

// builderVerbs are the read-only verbs the builder offers, if policy allows them.
var builderVerbs = []string{"get", "describe", "logs"}

// allNames is the "name" choice meaning "every object".
const allNames = "*"

func nextField(chosen map[string]string) string {
	for _, f := range []string{"verb", "resource", "namespace", "name"} {
		if chosen[f] == "" {
			return f
		}
	}
	return ""
}

// build shows the select for the next field, or runs the finished command.
func (h *Handler) build(ctx context.Context, a audit, ch *channel, be boundExecutor, chosen map[string]string) chat.Message {
	if chosen["verb"] == "logs" && chosen["resource"] == "" {
		chosen["resource"] = "pods"
	}
	field := nextField(chosen)
	if field == "" {
		args := []string{chosen["verb"], chosen["resource"]}
		if chosen["name"] != allNames {
			args = append(args, chosen["name"])
		}
		args = append(args, "-n", chosen["namespace"])
		return h.runExecutor(ctx, a, ch, be, command.Command{Name: be.typ, Args: args}, false, nil)
	}
	id, err := h.identityFor(ch, a.in)
	if err != nil {
		return errorMessage("Denied by kubechat policy", err.Error())
	}
	options, err := h.choices(ctx, be, id, field, chosen)
	if err != nil {
		return errorMessage("Cannot build a command", err.Error())
	}
	if len(options) == 0 {
		return errorMessage("Cannot build a command", fmt.Sprintf("there is no %s to choose from for %s", field, id.User))
	}
	params := maps.Clone(chosen)
	params["executor"], params["field"] = be.exec.Name(), field
	buttonID, err := h.opts.Buttons.Put(ctx, button.Spec{Kind: buttonBuild, Params: params, Platform: a.in.Platform, Channel: a.in.Channel.ID, OneShot: true})
	if err != nil {
		return errorMessage("Cannot build a command", err.Error())
	}
	sel := chat.Select{Placeholder: "Choose a " + field, ID: buttonID}
	for _, o := range options {
		label := o
		if o == allNames {
			label = "(all)"
		}
		sel.Options = append(sel.Options, chat.Option{Label: label, Value: o})
	}
	so := strings.TrimSpace(strings.Join([]string{be.typ, chosen["verb"], chosen["resource"], nsFlag(chosen["namespace"])}, " "))
	return chat.Message{Title: "Build a command", Sections: []chat.Section{{Text: "So far: `" + so + "`", Selects: []chat.Select{sel}}}}
}

func nsFlag(ns string) string {
	if ns == "" {
		return ""
	}
	return "-n " + ns
}

// choices lists the options for field that policy allows.
func (h *Handler) choices(ctx context.Context, be boundExecutor, id executor.Identity, field string, chosen map[string]string) ([]string, error) {
	var out []string
	switch field {
	case "verb":
		for _, v := range builderVerbs {
			if be.policy.AllowsVerb(v) {
				out = append(out, v)
			}
		}
		return out, nil
	case "namespace":
		if len(be.policy.Namespaces) > 0 && !slices.Contains(be.policy.Namespaces, "*") {
			return be.policy.Namespaces, nil
		}
	}
	b, ok := be.exec.(executor.Builder)
	if !ok {
		return nil, fmt.Errorf("%s has no command builder", be.exec.Name())
	}
	values, err := b.Complete(ctx, id, field, chosen)
	if err != nil {
		return nil, err
	}
	for _, v := range values {
		switch field {
		case "resource":
			// The same analysis and policy as the finished command.
			a, err := be.exec.Analyze(ctx, []string{chosen["verb"], v})
			if err != nil {
				continue
			}
			a.Namespaces = nil // chosen in the next step
			if _, err := be.policy.Check(a); err == nil {
				out = append(out, v)
			}
		default:
			out = append(out, v)
		}
	}
	if field == "name" && chosen["verb"] != "logs" {
		out = append([]string{allNames}, out...)
	}
	return out[:min(len(out), 100)], nil
}

// continueBuild applies one select choice and shows the next step.
func (h *Handler) continueBuild(ctx context.Context, a audit, pressed button.Spec) chat.Message {
	ch := h.channels[channelKey(a.in.Platform, a.in.Channel.ID)]
	be, ok := ch.executor(pressed.Params["executor"])
	if !ok {
		return errorMessage("Button refused", fmt.Sprintf("executor %q is no longer bound to this channel", pressed.Params["executor"]))
	}
	a.executor = be.exec.Name()
	v := a.in.Value
	if v == "" || strings.HasPrefix(v, "-") || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' }) {
		h.record(ctx, a, resultSyntax, fmt.Errorf("bad choice %q", v))
		return errorMessage("Cannot build a command", fmt.Sprintf("%q is not a valid choice", v))
	}
	chosen := map[string]string{}
	for _, f := range []string{"verb", "resource", "namespace", "name"} {
		chosen[f] = pressed.Params[f]
	}
	chosen[pressed.Params["field"]] = v
	if pressed.Params["field"] == "verb" {
		if !be.policy.AllowsVerb(v) || !slices.Contains(builderVerbs, v) {
			h.record(ctx, a, resultPolicyDenied, fmt.Errorf("verb %q not allowed", v))
			return errorMessage("Denied by kubechat policy", fmt.Sprintf("the builder offers only %s as allowed here; %q is not", strings.Join(builderVerbs, ", "), v))
		}
	}
	return h.build(ctx, a, ch, be, chosen)
}
