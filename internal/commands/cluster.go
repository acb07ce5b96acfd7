package commands

import (
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/command"
)

// Several agents, one per cluster, may share a chat channel. Each hears
// every command there, and exactly one answers: the cluster named with
// --cluster, else the channel's default cluster (channels[].defaultCluster),
// else, in a channel without one, the agent whose bot was addressed (a
// message overheard from another agent's mention is not ours). "ping" without
// --cluster is answered by every agent, so it lists the clusters that answer.
// Button ids carry their agent's cluster (button.Store's issuer), so a click
// that reaches another agent is ignored there.

// addressed reports whether this agent answers cmd typed in ch.
func (h *Handler) addressed(ch *channel, in chat.Inbound, cmd command.Command) bool {
	switch {
	case cmd.Cluster != "":
		return cmd.Cluster == h.cluster
	case cmd.Name == "ping":
		return true
	case ch != nil && ch.cfg.DefaultCluster != "":
		return ch.cfg.DefaultCluster == h.cluster
	}
	return !in.Overheard
}
