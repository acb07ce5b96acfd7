package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/kubechat/kubechat/internal/button"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/executor"
)

// The Mute control under a failure alert: a select of how long to mute it.
// A choice runs "silence add <the alert's matchers> --for D" (or
// --until-resolved) through the channel's silence executor, its policy and
// identity, as the one who chose, exactly as if typed.

const buttonMute = "mute"

// muteChoices are the select's options: its value becomes the flag.
var muteChoices = []chat.Option{
	{Label: "Mute for 1 hour", Value: "1h"},
	{Label: "Mute for 8 hours", Value: "8h"},
	{Label: "Mute for 24 hours", Value: "24h"},
	{Label: "Mute until resolved", Value: "resolved"},
}

// silenceType is the executor type that adds silences.
const silenceType = "silence"

// muteMatchers are the matchers that name ev's alert: its cluster, source
// and object, and the reason of a one-off or repeated event (a failing
// workload's reason may change while it stays the same alert).
func muteMatchers(ev event.Event) []string {
	var out []string
	add := func(name, value string) {
		if value != "" {
			out = append(out, name+"="+strconv.Quote(value))
		}
	}
	add("cluster", ev.Cluster)
	add("source", ev.Source)
	add("kind", ev.Object.Kind)
	add("namespace", ev.Object.Namespace)
	add("name", ev.Object.Name)
	if ev.Transition == "" {
		add("reason", ev.Reason)
	}
	return out
}

// MuteSelect is the Mute control under a failure alert in channel to
// (alerting.AlertMuter), or nil where the channel may not add silences.
func (h *Handler) MuteSelect(ctx context.Context, ev event.Event, platform string, to chat.Channel) *chat.Select {
	be, ok := h.channels[channelKey(platform, to.ID)].executor(silenceType)
	if !ok || be.typ != silenceType {
		return nil
	}
	if _, err := be.policy.Check(executor.Analysis{Verb: "add"}); err != nil {
		return nil
	}
	ms, _ := json.Marshal(muteMatchers(ev))
	id, err := h.opts.Buttons.Put(ctx, button.Spec{Kind: buttonMute, Params: map[string]string{"executor": be.exec.Name(), "matchers": string(ms)},
		Platform: platform, Channel: to.ID, OneShot: true})
	if err != nil {
		h.log.Warn("mute control not issued", "err", err)
		return nil
	}
	return &chat.Select{Placeholder: "Mute…", ID: id, Options: muteChoices}
}

// mute runs the silence a Mute choice asks for.
func (h *Handler) mute(ctx context.Context, a audit, pressed button.Spec, choice string) chat.Message {
	var ms []string
	if err := json.Unmarshal([]byte(pressed.Params["matchers"]), &ms); err != nil || len(ms) == 0 {
		return errorMessage("Cannot mute", "this control holds no alert kubechat can read")
	}
	args := append([]string{"add"}, ms...)
	switch choice {
	case "1h", "8h", "24h":
		args = append(args, "--for", choice)
	case "resolved":
		args = append(args, "--until-resolved")
	default:
		return errorMessage("Cannot mute", fmt.Sprintf("%q is not one of the Mute choices", choice))
	}
	args = append(args, "--comment", "muted from the alert")
	ch := h.channels[channelKey(a.in.Platform, a.in.Channel.ID)]
	be, ok := ch.executor(pressed.Params["executor"])
	if !ok {
		return errorMessage("Cannot mute", "this channel no longer has the executor that adds silences")
	}
	a.executor = be.exec.Name()
	return h.runExecutor(ctx, a, ch, be, command.Command{Name: pressed.Params["executor"], Args: args}, false, nil)
}
