package commands

import (
	"context"

	"github.com/kubechat/kubechat/internal/button"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/event"
)

// The "Open issue" button under a failure alert: a click runs "github
// issue create KIND/NAME -n NS --alert HEADLINE" through the channel's
// github executor, its policy and identity, as the one who clicked,
// exactly as if typed; the reply, with the issue's link, goes into the
// alert's thread. Only the alert's headline travels in the command (the
// reply shows the command): the issue's describe holds the object's
// status and events, which the alert's details come from.

// issueType is the executor type that opens GitHub issues.
const issueType = "github"

// issueButton is "Open issue" under ev's alert in channel to, where the
// channel binds a github executor whose policy allows opening an issue
// about ev's object; none for an alert about no object.
func (h *Handler) issueButton(ctx context.Context, ev event.Event, platform string, to chat.Channel) []chat.Button {
	ch := h.channels[channelKey(platform, to.ID)]
	if ch == nil || ev.Object.Kind == "" || ev.Object.Name == "" {
		return nil
	}
	args := []string{"issue", "create", ev.Object.Kind + "/" + ev.Object.Name}
	if ev.Object.Namespace != "" {
		args = append(args, "-n", ev.Object.Namespace)
	}
	args = append(args, "--alert", ev.Title())
	for _, be := range ch.executors {
		if be.typ != issueType {
			continue
		}
		analysis, err := be.exec.Analyze(ctx, args)
		if err != nil {
			continue
		}
		if _, err := be.policy.Check(analysis); err != nil {
			continue
		}
		cmd := command.Command{Name: be.exec.Name(), Args: args}
		id, err := h.opts.Buttons.Put(ctx, button.Spec{Kind: buttonRun, Params: map[string]string{"command": encodeCommand(cmd)},
			Platform: platform, Channel: to.ID, OneShot: true})
		if err != nil {
			h.log.Warn("no Open issue button: cannot issue it", "channel", ch.cfg.Name, "err", err)
			return nil
		}
		return []chat.Button{{Label: "Open issue", ID: id}}
	}
	return nil
}
