package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kubechat/kubechat/internal/button"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/fleet"
)

// Handle answers one mention or click: the hub finds the cluster it is
// for and asks that cluster's agent, which runs its own policy, identity
// and executor for the caller's chat identity, and answers. "ping"
// without --cluster goes to every cluster of the channel; "clusters" is
// answered by the hub.
func (h *Hub) Handle(ctx context.Context, in chat.Inbound) chat.Message {
	ch := h.channelOf(in)
	if ch == nil {
		return refusal("This channel is not configured on the hub",
			fmt.Sprintf("Add it to the hub's channels (platform %s, id %s) with its clusters.", in.Platform, in.Channel.ID))
	}
	// The agents know the channel as the hub's config names it.
	in.Channel = chat.Channel{Name: ch.Name, ID: ch.ID}
	in.Overheard = false
	if in.ButtonID != "" {
		tag, _, _ := strings.Cut(in.ButtonID, ".")
		for _, c := range ch.Clusters {
			if button.Tag(c) == tag {
				return h.ask(ctx, c, in)
			}
		}
		return refusal("Button refused", "this button was not issued by a cluster of this channel")
	}
	cmd, err := command.Parse(in.Text, nil)
	switch {
	case err == nil && cmd.Cluster != "":
		if !slices.Contains(ch.Clusters, cmd.Cluster) {
			return refusal("Unknown cluster", fmt.Sprintf("%q is not a cluster of this channel; it has: %s", cmd.Cluster, strings.Join(ch.Clusters, ", ")))
		}
		return h.ask(ctx, cmd.Cluster, in)
	case err == nil && cmd.Name == "clusters" && len(cmd.Args) == 0:
		return h.list(ctx, ch.Clusters)
	case err == nil && cmd.Name == "ping":
		return h.askAll(ctx, ch.Clusters, in)
	case ch.DefaultCluster != "":
		return h.ask(ctx, ch.DefaultCluster, in)
	case len(ch.Clusters) == 1:
		return h.ask(ctx, ch.Clusters[0], in)
	}
	// The agent reports a syntax error; but which agent? None: say which
	// clusters there are.
	return refusal("Which cluster?", fmt.Sprintf("This channel serves several clusters (%s) and has no default: start with --cluster NAME.", strings.Join(ch.Clusters, ", ")))
}

// channelOf is the configured channel in came from: by the platform's
// channel id, or its name (as the agent matches them).
func (h *Hub) channelOf(in chat.Inbound) *config.Channel {
	for _, key := range []string{in.Channel.ID, in.Channel.Name, "#" + in.Channel.Name} {
		if c := h.channels[channelKey(in.Platform, key)]; c != nil && key != "" && key != "#" {
			return c
		}
	}
	return nil
}

// ask sends in to cluster's agent and returns its reply.
func (h *Hub) ask(ctx context.Context, cluster string, in chat.Inbound) chat.Message {
	start := time.Now()
	body, err := json.Marshal(fleet.Request{Inbound: in})
	if err != nil {
		return refusal("Cannot send the command", err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(h.cfg.Fleet.CommandTimeout))
	defer cancel()
	msg, err := h.nc.RequestWithContext(ctx, fleet.CommandSubject(cluster, in.Platform), body)
	result := "ok"
	defer func() { h.metrics.commands.WithLabelValues(cluster, result).Inc() }()
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		result = "not_connected"
		return refusal("Cluster "+cluster+" is not connected", "Its agent is not connected to the hub now; nothing ran.")
	case errors.Is(err, context.DeadlineExceeded):
		result = "timeout"
		return refusal("Cluster "+cluster+" did not answer", fmt.Sprintf("No answer within %s; the command may still be running there.", time.Duration(h.cfg.Fleet.CommandTimeout)))
	case err != nil:
		result = "error"
		return refusal("Cluster "+cluster+" was not reached", err.Error())
	}
	var r fleet.Reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		result = "error"
		return refusal("Cluster "+cluster+" answered something unreadable", err.Error())
	}
	h.log.Debug("command answered", "cluster", cluster, "duration", time.Since(start).Round(time.Millisecond))
	if r.Error != "" {
		result = "error"
		return refusal("Cluster "+cluster+" could not answer", r.Error)
	}
	return r.Message
}

// askAll asks every cluster and puts their answers in one message, in
// the channel's order of clusters.
func (h *Hub) askAll(ctx context.Context, clusters []string, in chat.Inbound) chat.Message {
	replies := make([]chat.Message, len(clusters))
	var wg sync.WaitGroup
	for i, c := range clusters {
		wg.Go(func() { replies[i] = h.ask(ctx, c, in) })
	}
	wg.Wait()
	out := chat.Message{Title: fmt.Sprintf("%d clusters", len(clusters)), Level: chat.LevelInfo}
	for i, r := range replies {
		if r.Level == chat.LevelError {
			out.Level = chat.LevelWarning
		}
		text := strings.TrimSpace(r.PlainText())
		if text == "" {
			text = "(no answer: the agent left it to another cluster)"
		}
		out.Sections = append(out.Sections, chat.Section{Header: clusters[i], Text: text})
	}
	return out
}

func refusal(title, text string) chat.Message {
	return chat.Message{Title: title, Level: chat.LevelError, Sections: []chat.Section{{Text: text}}, Context: "kubechat hub"}
}
