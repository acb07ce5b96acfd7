// Package router sends events from sources to the channels bound to them,
// and answers inbound messages from chat platforms.
package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	amlabels "github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/kubechat/kubechat/internal/action"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/health"
	"github.com/kubechat/kubechat/internal/outbox"
)

// Router routes events to channels by their source bindings, and commands
// from channels to executors.
type Router struct {
	cfg        *config.Config
	cluster    string
	opts       Options
	platforms  map[string]chat.Platform
	bySource   map[string][]binding
	channels   map[string]*channel // by platform + channel id
	users      map[string]config.User
	aliases    command.Aliases
	log        *slog.Logger
	events     *prometheus.CounterVec
	cmdMetrics commandMetrics

	senders map[string]*sender // by senderKey
	state   StateStore
	groupMu sync.Mutex
	groups  map[string]*group // by event fingerprint

	actions map[string]boundAction // by name
	jobs    *jobQueue              // actions waiting to run
	threads *threads               // open Alertmanager alerts, for correlation
}

// Options are the router's optional parts.
type Options struct {
	// Executors are the built executors by configured name.
	Executors map[string]executor.Executor
	// State persists per-channel switches (notifications on|off).
	State StateStore
	// Health reports the agent's parts for "status".
	Health *health.Tracker
	// KubernetesVersion reports the API server version for "ping".
	KubernetesVersion func(context.Context) (string, error)
	// Actions issues and redeems button ids (default: a store with a random key).
	Actions *action.Store
	// Backoff tunes delivery retries (default: chat.Backoff's defaults).
	Backoff chat.Backoff
	// Outbox keeps queued messages across restarts (nil: in memory only).
	Outbox *outbox.Store
	// PodExecutors are the executors, by configured name, that run each
	// command in a pod; a channel uses them where config.IsolationFor says pod.
	PodExecutors map[string]executor.Executor
}

// StateStore is the persisted key-value state (a ConfigMap in the cluster).
type StateStore = chat.StateStore

type binding struct {
	platform chat.Platform
	channel  chat.Channel
	matchers amlabels.Matchers
}

// New builds a router over the configured channels. Every channel's platform must be in platforms.
func New(cfg *config.Config, platforms map[string]chat.Platform, opts Options, reg prometheus.Registerer, log *slog.Logger) (*Router, error) {
	aliases, err := command.ParseAliases(cfg.Aliases)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if _, ok := aliases["k"]; !ok {
		aliases["k"] = []string{"kubectl"}
	}
	if opts.Actions == nil {
		if opts.Actions, err = action.NewStore(nil, action.DefaultTTL); err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
	}
	deliveries := chat.NewDeliveryMetrics(reg)
	r := &Router{
		cfg:        cfg,
		cluster:    cfg.Cluster.Name,
		opts:       opts,
		platforms:  platforms,
		bySource:   map[string][]binding{},
		channels:   map[string]*channel{},
		users:      map[string]config.User{},
		aliases:    aliases,
		log:        log,
		cmdMetrics: newCommandMetrics(reg),
		senders:    map[string]*sender{},
		state:      opts.State,
		groups:     map[string]*group{},
		jobs:       newJobQueue(),
		threads:    newThreads(),
		events: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "kubechat_events_total",
			Help: "Events by pipeline stage: in (from a source), matched (bound to a channel), repeated (already queued or delivered: a replay), sent (delivered), deferred (left queued at shutdown), dropped (delivery failed).",
		}, []string{"stage"}),
	}
	for _, stage := range []string{"in", "matched", "repeated", "sent", "deferred", "dropped"} {
		r.events.WithLabelValues(stage)
	}
	execCfg := map[string]config.Executor{}
	for _, e := range cfg.Executors {
		execCfg[e.Name] = e
	}
	for _, ch := range cfg.Channels {
		p, ok := platforms[ch.Platform]
		if !ok {
			return nil, fmt.Errorf("router: channel %q: platform %q is not built", ch.Name, ch.Platform)
		}
		b := binding{platform: p, channel: chat.Channel{Name: ch.Name, ID: ch.ID}}
		if b.matchers, err = compileMatchers(ch.Bindings.Matchers); err != nil {
			return nil, fmt.Errorf("router: channel %q: %w", ch.Name, err)
		}
		for _, src := range ch.Bindings.Sources {
			r.bySource[src] = append(r.bySource[src], b)
		}
		if _, ok := r.senders[senderKey(b)]; !ok {
			rl := ch.RateLimit.WithDefaults()
			r.senders[senderKey(b)] = &sender{b: b, q: chat.NewQueue(p, p.Name(), b.channel, chat.QueueOptions{
				PerSecond: rl.PerSecond, Burst: rl.Burst, Backoff: opts.Backoff, Metrics: deliveries, Log: log, Health: opts.Health,
			})}
		}
		c := &channel{cfg: ch}
		for _, name := range ch.Bindings.Executors {
			e, ok := opts.Executors[name]
			if config.IsolationFor(ch, execCfg[name]) == config.IsolationPod {
				e, ok = opts.PodExecutors[name]
			}
			if !ok {
				return nil, fmt.Errorf("router: channel %q: executor %q is not built", ch.Name, name)
			}
			policy := executor.PolicyFor(execCfg[name], e)
			if o, ok := e.(executor.OpaqueResources); ok && o.OpaqueResources() != "" && len(policy.Resources) > 0 && !slices.Contains(policy.Resources, "*") {
				return nil, fmt.Errorf("router: channel %q: executor %q: policy.resources cannot restrict it: %s", ch.Name, name, o.OpaqueResources())
			}
			c.executors = append(c.executors, boundExecutor{exec: e, typ: execCfg[name].Type, policy: policy})
		}
		r.channels[channelKey(ch.Platform, ch.ID)] = c
	}
	for _, u := range cfg.Users {
		r.users[userKey(u.Platform, u.ID)] = u
	}
	if r.state == nil {
		r.state = &memoryState{m: map[string]string{}}
	}
	r.threads.use(r.state, log, r.senders)
	if err := r.buildActions(); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	r.opts.Actions.SetIssuer(r.cluster)
	if reg != nil {
		if err := reg.Register(queueCollector{r}); err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
	}
	return r, nil
}

// Emit routes one event to every channel bound to its source. It only
// queues: Start's senders deliver, in order, per channel. Each message is
// recorded in the outbox under its key first; a key already pending or
// delivered (a replay after a restart) is not queued again. It is the
// emit function handed to sources.
func (r *Router) Emit(ctx context.Context, ev event.Event) {
	r.events.WithLabelValues("in").Inc()
	senders := r.sendersFor(ev)
	if len(senders) == 0 {
		return
	}
	r.events.WithLabelValues("matched").Add(float64(len(senders)))
	kind := kindEvent
	switch {
	case ev.Transition != "" && ev.Group == "" && r.threads.correlated(ev, senders):
		// An Alertmanager alert about this workload is open: the Kubernetes
		// view of it goes into that alert's thread.
		kind = kindThread
	case ev.Transition != "":
		kind = kindTransition
	case ev.Type == event.Error || ev.Type == event.Warning:
		if _, repeat := r.grouped(ev); repeat {
			return // counted; the flusher edits the first message
		}
		kind = kindGrouped
	}
	for _, s := range senders {
		r.queue(ctx, ev, s, kind)
	}
}

// Kinds of queued message, as the outbox records them.
const (
	kindEvent      = "event"      // a one-off event
	kindGrouped    = "grouped"    // the first of repeats that fold into it
	kindTransition = "transition" // a transition alert, or its resolution
	kindThread     = "thread"     // a transition posted into an Alertmanager alert's thread
)

// queue records the message of ev for s in the outbox and queues it,
// unless its key is already pending or delivered.
func (r *Router) queue(ctx context.Context, ev event.Event, s *sender, kind string) {
	key := MessageKey(ev, s.b)
	body, err := json.Marshal(ev)
	if err != nil {
		r.log.Error("event not queued: cannot record it", "err", err)
		return
	}
	if !r.opts.Outbox.Add(outbox.Entry{Key: key, Channel: senderKey(s.b), Kind: kind, Body: body}) {
		r.events.WithLabelValues("repeated").Inc()
		return
	}
	r.job(ctx, ev, s, kind, key)
}

// job queues the message of ev in s: a new one, or one replayed from the outbox.
func (r *Router) job(ctx context.Context, ev event.Event, s *sender, kind, key string) {
	switch kind {
	case kindThread:
		r.intoThread(ctx, ev, s, key)
	case kindTransition:
		r.transition(ctx, ev, s.b, s, key)
	case kindGrouped:
		g := r.groupOf(ev)
		m := Render(ev)
		acts := r.actionsFor(ev, s)
		r.enqueue(s, key, func() (chat.Message, bool) { return m, true }, func(ctx context.Context, ref chat.MessageRef) {
			r.groupMu.Lock()
			g.refs[s] = ref
			r.groupMu.Unlock()
			r.triggerActions(acts, ev, s, ref)
		})
	default:
		m := Render(ev)
		r.enqueue(s, key, func() (chat.Message, bool) { return m, true }, nil)
	}
}

// Replay queues the messages the outbox holds from before a restart or a
// hand-over, in the order they were first queued. Call it before Start and
// before the sources start.
func (r *Router) Replay(ctx context.Context) int {
	n := 0
	for _, e := range r.opts.Outbox.Pending() {
		s, ok := r.senders[e.Channel]
		var ev event.Event
		if !ok || json.Unmarshal(e.Body, &ev) != nil {
			r.log.Warn("dropping an outbox entry for a channel no longer configured", "key", e.Key)
			r.opts.Outbox.Done(e.Key)
			continue
		}
		if ev.Transition == "" && (ev.Type == event.Error || ev.Type == event.Warning) {
			r.grouped(ev)
		}
		r.job(ctx, ev, s, e.Kind, e.Key)
		n++
	}
	return n
}

// MessageKey is the stable identity of the message of ev in b's channel:
// the same event routed again (a replay) has the same key, and platforms
// that take an idempotency key get it.
func MessageKey(ev event.Event, b binding) string {
	id := ev.ID
	if id == "" {
		id = ev.Digest()
	}
	h := sha256.Sum256([]byte(senderKey(b) + "\x00" + string(ev.Transition) + "\x00" + id))
	return hex.EncodeToString(h[:12])
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

var (
	queueDepth  = prometheus.NewDesc("kubechat_queue_depth", "Messages queued or being delivered, by channel.", []string{"platform", "channel"}, nil)
	queueOldest = prometheus.NewDesc("kubechat_queue_oldest_seconds", "Age of the oldest message waiting in a channel's queue (0 when none waits).", []string{"platform", "channel"}, nil)
)

// queueCollector reports every channel's queue.
type queueCollector struct{ r *Router }

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepth
	ch <- queueOldest
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.r.senders {
		age := 0.0
		if t := s.q.Oldest(); !t.IsZero() {
			age = time.Since(t).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(queueDepth, prometheus.GaugeValue, float64(s.q.Pending()), s.b.platform.Name(), s.b.channel.Name)
		ch <- prometheus.MustNewConstMetric(queueOldest, prometheus.GaugeValue, age, s.b.platform.Name(), s.b.channel.Name)
	}
}
