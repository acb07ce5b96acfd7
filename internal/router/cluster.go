package router

import "github.com/kubechat/kubechat/internal/command"

// Several agents, one per cluster, may share a chat channel. Each hears
// every command there, and exactly one answers: the cluster named with
// --cluster, else the channel's default cluster (channels[].defaultCluster),
// else, in a channel without one, the agent that heard it. "ping" without
// --cluster is answered by every agent, so it lists the clusters that answer.
// Button ids carry their agent's cluster (action.Store's issuer), so a click
// that reaches another agent is ignored there.

// addressed reports whether this agent answers cmd typed in ch.
func (r *Router) addressed(ch *channel, cmd command.Command) bool {
	if cmd.Cluster != "" {
		return cmd.Cluster == r.cluster
	}
	if cmd.Name == "ping" || ch == nil || ch.cfg.DefaultCluster == "" {
		return true
	}
	return ch.cfg.DefaultCluster == r.cluster
}
