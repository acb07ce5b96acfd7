// Package router sends events from sources to the channels bound to them,
// and answers inbound messages from chat platforms.
package router

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/kubechat/kubechat/internal/buildinfo"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

// PostTimeout bounds one delivery attempt.
const PostTimeout = 15 * time.Second

// Router routes events to channels by their source bindings.
type Router struct {
	cluster   string
	platforms map[string]chat.Platform
	bySource  map[string][]binding
	log       *slog.Logger
	events    *prometheus.CounterVec
}

type binding struct {
	platform chat.Platform
	channel  chat.Channel
}

// New builds a router over the configured channels. Every channel's platform must be in platforms.
func New(cfg *config.Config, platforms map[string]chat.Platform, reg prometheus.Registerer, log *slog.Logger) (*Router, error) {
	r := &Router{
		cluster:   cfg.Cluster.Name,
		platforms: platforms,
		bySource:  map[string][]binding{},
		log:       log,
		events: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "kubechat_events_total",
			Help: "Events by pipeline stage: in (from a source), matched (bound to a channel), sent (delivered), dropped (delivery failed).",
		}, []string{"stage"}),
	}
	for _, stage := range []string{"in", "matched", "sent", "dropped"} {
		r.events.WithLabelValues(stage)
	}
	for _, ch := range cfg.Channels {
		p, ok := platforms[ch.Platform]
		if !ok {
			return nil, fmt.Errorf("router: channel %q: platform %q is not built", ch.Name, ch.Platform)
		}
		for _, src := range ch.Bindings.Sources {
			r.bySource[src] = append(r.bySource[src], binding{platform: p, channel: chat.Channel{Name: ch.Name, ID: ch.ID}})
		}
	}
	return r, nil
}

// Emit routes one event to every channel bound to its source. It is the emit
// function handed to sources.
func (r *Router) Emit(ctx context.Context, ev event.Event) {
	r.events.WithLabelValues("in").Inc()
	m := Render(ev)
	for _, b := range r.bySource[ev.Source] {
		r.events.WithLabelValues("matched").Inc()
		pctx, cancel := context.WithTimeout(ctx, PostTimeout)
		_, err := b.platform.Post(pctx, b.channel, m)
		cancel()
		if err != nil {
			r.events.WithLabelValues("dropped").Inc()
			r.log.Error("event not delivered", "platform", b.platform.Name(), "channel", b.channel.Name,
				"event", ev.Fingerprint(), "err", err)
			continue
		}
		r.events.WithLabelValues("sent").Inc()
		r.log.Debug("event delivered", "platform", b.platform.Name(), "channel", b.channel.Name, "event", ev.Fingerprint())
	}
}

// Render turns an event into a chat message.
func Render(ev event.Event) chat.Message {
	level := map[event.Level]chat.Level{event.Info: chat.LevelInfo, event.Warn: chat.LevelWarning, event.Critical: chat.LevelError}[ev.Level]
	if level == "" {
		level = chat.LevelInfo
	}
	fields := []chat.Field{{Name: "Kind", Value: ev.Object.Kind}, {Name: "Name", Value: ev.Object.Name}}
	if ev.Object.Namespace != "" {
		fields = append(fields, chat.Field{Name: "Namespace", Value: ev.Object.Namespace})
	}
	if ev.Reason != "" {
		fields = append(fields, chat.Field{Name: "Reason", Value: ev.Reason})
	}
	if ev.Count > 1 {
		fields = append(fields, chat.Field{Name: "Count", Value: fmt.Sprint(ev.Count)})
	}
	for _, f := range ev.Fields {
		fields = append(fields, chat.Field{Name: f.Name, Value: f.Value})
	}
	return chat.Message{
		Title:    ev.Title(),
		Level:    level,
		Sections: []chat.Section{{Text: ev.Message, Fields: fields}},
		Context:  "cluster: " + ev.Cluster,
	}
}

// Handle answers an inbound message. Commands are parsed by the command
// package; until an executor is bound, only "ping" is understood.
func (r *Router) Handle(_ context.Context, in chat.Inbound) chat.Message {
	words := strings.Fields(in.Text)
	if len(words) == 1 && words[0] == "ping" {
		return chat.Message{Title: fmt.Sprintf("pong from cluster %s (kubechat %s)", r.cluster, buildinfo.String()), Thread: &in.Thread}
	}
	return chat.Message{
		Title:  "Unknown command",
		Level:  chat.LevelWarning,
		Thread: &in.Thread,
		Sections: []chat.Section{{
			Text: fmt.Sprintf("kubechat on cluster %s does not know %q. Try `ping`.", r.cluster, strings.Join(words, " ")),
		}},
	}
}
