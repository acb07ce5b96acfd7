// Package alerting takes events from the sources to the chat channels bound
// to them: bindings and label matchers, the per-channel notification
// switch, inhibition and silences, grouping of repeated warnings,
// transition alerts (one message when a workload starts failing, edited
// when it recovers), correlation with open Alertmanager alerts, the outbox that keeps every queued message
// across stops, and one ordered, rate-limited, retried queue per channel.
// After an alert is delivered, the actions configured for it (config
// actions:) run through an Actions runner that the command side provides.
//
// Who sets timeouts: the per-attempt timeout is the chat queue's; Start's
// drain is bounded by DrainTimeout. Emit never blocks on delivery.
package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amlabels "github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/health"
	"github.com/kubechat/kubechat/internal/outbox"
	"github.com/kubechat/kubechat/internal/state"
)

// Pipeline routes events to the channels bound to their sources and
// delivers them.
type Pipeline struct {
	cluster  string
	opts     Options
	bySource map[string][]binding
	log      *slog.Logger
	metrics  *Metrics
	received *prometheus.CounterVec
	delivery *chat.DeliveryMetrics

	senders map[string]*sender // by senderKey
	groupMu sync.Mutex
	groups  map[string]*group // by event fingerprint

	raising   raising                 // failing alerts queued and not yet finished
	followUps *jobQueue               // actions waiting to run
	actions   atomic.Pointer[Actions] // runs them; nil: none run
	threads   *threads                // open Alertmanager alerts, for correlation
	silences  *silences               // the channels' silences, in the state
	inhibitor *inhibitor              // the inhibition rules and firing Alertmanager alerts
	decisions *Decisions              // what decided each event's outcome
	links     links                   // events whose sinks link back to their chat messages
	// sourceTemplates shape the alerts of sources that name a template.
	sourceTemplates map[string]*messageTemplate
}

// Options are the pipeline's optional parts.
type Options struct {
	// State keeps open alerts, alert threads and the notification switches
	// (default: in memory, for an agent without a cluster).
	State chat.StateStore
	// Health reports the pipeline's loop.
	Health *health.Tracker
	// Backoff tunes delivery retries (default: chat.Backoff's defaults).
	Backoff chat.Backoff
	// Outbox keeps queued messages across restarts (nil: in memory only).
	Outbox *outbox.Store
	// Metrics are shared by every pipeline of the agent (default: built
	// with New's registerer).
	Metrics *Metrics
	// Decisions records what decided each event's outcome, for explain
	// (default: a record of its own; the agent shares one across reloads).
	Decisions *Decisions
	// LinkWait bounds how long a sink that links back waits for the same
	// event's chat messages (default LinkWait).
	LinkWait time.Duration
}

// Actions runs the commands configured to follow an alert (config
// actions:). The command side implements it: an action runs as the channel
// its alert was delivered to, through that channel's policy and identity.
type Actions interface {
	// Triggered names the actions ev triggers in channel ch of platform,
	// as they are switched on or off now.
	Triggered(ev event.Event, platform string, ch chat.Channel) []string
	// Run runs the named action for ev and returns the reply to post in
	// the thread of alert, the delivered message. It blocks until done.
	// While it follows an operation the command started (a rollout), it
	// shows each state in draft; the reply then replaces the last one.
	Run(ctx context.Context, name string, ev event.Event, platform string, ch chat.Channel, alert chat.MessageRef, draft chat.Draft) chat.Message
}

// AlertButtoner is implemented by an Actions that offers buttons under
// failure alerts (the AI assistant's "Ask AI", the follow-ups an event
// suggests: an Argo CD Application's Sync, Diff, History). Each button
// carries only a signed id; the command side keeps what it does and
// authorises the click.
type AlertButtoner interface {
	AlertButtons(ctx context.Context, ev event.Event, platform string, ch chat.Channel) []chat.Button
}

// render is Render plus the buttons the command side offers under a
// failure alert in s's channel.
func (p *Pipeline) render(ctx context.Context, ev event.Event, s *sender) chat.Message {
	m := p.baseMessage(ev, s)
	failing := ev.Transition == event.Failing || (ev.Transition == "" && (ev.Type == event.Error || ev.Type == event.Warning))
	if b, ok := p.runner().(AlertButtoner); ok && failing {
		if bs := b.AlertButtons(ctx, ev, s.b.platform.Name(), s.b.channel); len(bs) > 0 {
			m.Sections = append(m.Sections, chat.Section{Buttons: bs})
		}
	}
	if mu, ok := p.runner().(AlertMuter); ok && failing {
		if sel := mu.MuteSelect(ctx, ev, s.b.platform.Name(), s.b.channel); sel != nil {
			m.Sections = append(m.Sections, chat.Section{Selects: []chat.Select{*sel}})
		}
	}
	return m
}

// SetActions gives the pipeline what runs the actions alerts trigger (the
// command handler, which is built after the pipeline because its built-ins
// switch the pipeline's notifications). A config reload that keeps the
// pipeline calls it again, while it runs, with the new command handler.
func (p *Pipeline) SetActions(a Actions) { p.actions.Store(&a) }

// runner is what runs actions now, or nil.
func (p *Pipeline) runner() Actions {
	if a := p.actions.Load(); a != nil {
		return *a
	}
	return nil
}

// binding is one channel bound to a source.
type binding struct {
	platform chat.Platform
	channel  chat.Channel
	matchers amlabels.Matchers
	// path is the channel's place in the config (channels[2]), for explain.
	path string
	// template shapes the channel's alerts (nil: the source's, else built in).
	template *messageTemplate
}

// New builds a pipeline over the configured channels. Every channel's
// platform must be in platforms. Without opts.Metrics it registers its
// metrics with reg.
func New(cfg *config.Config, platforms map[string]chat.Platform, opts Options, reg prometheus.Registerer, log *slog.Logger) (*Pipeline, error) {
	if opts.State == nil {
		opts.State = state.NewMemory()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(reg)
	}
	if opts.Decisions == nil {
		opts.Decisions = NewDecisions(0)
	}
	if opts.LinkWait <= 0 {
		opts.LinkWait = LinkWait
	}
	deliveries := opts.Metrics.delivery
	p := &Pipeline{
		cluster:   cfg.Cluster.Name,
		opts:      opts,
		bySource:  map[string][]binding{},
		log:       log,
		senders:   map[string]*sender{},
		groups:    map[string]*group{},
		followUps: newJobQueue(),
		threads:   newThreads(),
		silences:  &silences{state: opts.State, log: log},
		decisions: opts.Decisions,
		delivery:  deliveries,
		metrics:   opts.Metrics,
		received:  opts.Metrics.received,
	}
	for _, sc := range cfg.Sources {
		p.received.WithLabelValues(sc.Name)
	}
	tmpls, err := p.compileTemplates(cfg)
	if err != nil {
		return nil, err
	}
	if p.inhibitor, err = newInhibitor(cfg.Inhibit, opts.State, log); err != nil {
		return nil, err
	}
	for _, r := range p.inhibitor.rules {
		p.metrics.inhibited.WithLabelValues(r.name) // served at 0 from the start
	}
	for i, ch := range cfg.Channels {
		pl, ok := platforms[ch.Platform]
		if !ok {
			return nil, fmt.Errorf("alerting: channel %q: platform %q is not built", ch.Name, ch.Platform)
		}
		b := binding{platform: pl, channel: chat.Channel{Name: ch.Name, ID: ch.ID}, path: fmt.Sprintf("channels[%d]", i), template: tmpls[ch.Template]}
		if b.matchers, err = compileMatchers(ch.Bindings.Matchers); err != nil {
			return nil, fmt.Errorf("alerting: channel %q: %w", ch.Name, err)
		}
		for _, src := range ch.Bindings.Sources {
			p.bySource[src] = append(p.bySource[src], b)
		}
		if _, ok := pl.(chat.BackLinker); ok {
			p.links.some = true
		}
		if _, ok := p.senders[senderKey(b)]; !ok {
			rl := ch.RateLimit.WithDefaults()
			p.senders[senderKey(b)] = &sender{b: b, q: chat.NewQueue(pl, pl.Name(), b.channel, chat.QueueOptions{
				PerSecond: rl.PerSecond, Burst: rl.Burst, Backoff: opts.Backoff, Metrics: deliveries, Log: log, Health: opts.Health,
			})}
		}
	}
	p.threads.use(opts.State, log, p.senders)
	opts.Metrics.attach(p)
	return p, nil
}

// Close takes the pipeline's queues out of the metrics: call it once the
// pipeline stopped for good (a config reload replaced it) or when it was
// built and never started (a reload that failed).
func (p *Pipeline) Close() { p.metrics.detach(p) }

// Emit routes one event to every channel bound to its source. It only
// queues: Start's senders deliver, in order, per channel. Each message is
// recorded in the outbox under its key first; a key already pending or
// delivered (a replay after a restart) is not queued again. It is the
// emit function handed to sources.
func (p *Pipeline) Emit(ctx context.Context, ev event.Event) {
	p.received.WithLabelValues(ev.Source).Inc()
	p.inhibitor.observe(ctx, ev)
	tr := p.decisions.begin(ev)
	senders := p.unmuted(ctx, ev, p.route(ev, tr), tr)
	if len(senders) == 0 {
		return
	}
	kind := kindEvent
	switch {
	case ev.Transition != "" && ev.Group == "" && p.threads.correlated(ev, senders):
		// An Alertmanager alert about this workload is open: the Kubernetes
		// view of it goes into that alert's thread.
		kind = kindThread
	case ev.Transition != "":
		kind = kindTransition
		if ev.Transition == event.Resolved {
			if senders = p.resolvable(ev, senders, tr); len(senders) == 0 {
				return
			}
		}
	case ev.Type == event.Error || ev.Type == event.Warning:
		if _, repeat := p.grouped(ev); repeat {
			for _, s := range senders {
				p.decisions.decide(tr, channelName(s), OutcomeGrouped,
					fmt.Sprintf("a repeat within %s of the same object, reason and source: counted in the first message", GroupWindow))
			}
			return // counted; the flusher edits the first message
		}
		kind = kindGrouped
	}
	defer p.forgetLinks(p.expectLinks(p.entriesOf(ev, senders)))
	for _, s := range senders {
		p.queue(ctx, ev, s, kind, tr)
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
func (p *Pipeline) queue(ctx context.Context, ev event.Event, s *sender, kind string, tr *Trace) {
	key := MessageKey(ev, s.b)
	body, err := json.Marshal(ev)
	if err != nil {
		p.log.Error("event not queued: cannot record it", "err", err)
		return
	}
	if !p.opts.Outbox.Add(outbox.Entry{Key: key, Channel: senderKey(s.b), Source: ev.Source, Kind: kind, Body: body}) {
		p.delivery.Count(s.b.platform.Name(), s.b.channel.Name, chat.ResultDuplicate)
		p.decisions.decide(tr, channelName(s), OutcomeDuplicate, "already queued or delivered under the same message key (a replay)")
		return
	}
	p.recordQueued(tr, ev, s, kind, key)
	p.job(ctx, ev, s, kind, key)
}

// job queues the message of ev in s: a new one, or one replayed from the outbox.
func (p *Pipeline) job(ctx context.Context, ev event.Event, s *sender, kind, key string) {
	switch kind {
	case kindThread:
		p.intoThread(ctx, ev, s, key)
	case kindTransition:
		p.transition(ctx, ev, s, key)
	case kindGrouped:
		g := p.groupOf(ev)
		m := p.render(ctx, ev, s)
		acts := p.actionsFor(ev, s)
		p.enqueue(s, key, func() (chat.Message, bool) { return m, true }, func(_ context.Context, ref chat.MessageRef) {
			p.groupMu.Lock()
			g.refs[s] = ref
			p.groupMu.Unlock()
			p.triggerActions(acts, ev, s, ref)
		})
	default:
		m := p.render(ctx, ev, s)
		acts := p.actionsFor(ev, s)
		// Build and the callback run in turn on s's queue: by the time a
		// later event of the conversation is built, the first one's root
		// is recorded.
		p.enqueue(s, key, func() (chat.Message, bool) {
			if ev.Thread != "" {
				if ref, ok := p.threads.conversation(s, ev.Thread); ok {
					m.Thread = &ref
				}
			}
			return m, true
		}, func(ctx context.Context, ref chat.MessageRef) {
			if ev.Thread != "" && m.Thread == nil {
				p.threads.startConversation(ctx, s, ev.Thread, ref)
			}
			// The event's own message: replies go to its thread's root, and
			// each event of a conversation keeps its own action replies.
			p.triggerActions(acts, ev, s, ref)
		})
	}
}

// Replay queues the messages the outbox holds from before a restart or a
// hand-over, in the order they were first queued. Call it before Start and
// before the sources start.
func (p *Pipeline) Replay(ctx context.Context) int {
	type pending struct {
		ev   event.Event
		s    *sender
		kind string
		key  string
	}
	var jobs []pending
	byEvent := map[string][]linkEntry{} // the messages of each event, for links back
	for _, e := range p.opts.Outbox.Pending() {
		s, ok := p.senders[e.Channel]
		var ev event.Event
		if !ok || json.Unmarshal(e.Body, &ev) != nil {
			p.log.Warn("dropping an outbox entry for a channel no longer configured", "key", e.Key)
			p.opts.Outbox.Done(e.Key)
			continue
		}
		jobs = append(jobs, pending{ev, s, e.Kind, e.Key})
		if p.links.some {
			id := eventIdentity(ev)
			byEvent[id] = append(byEvent[id], linkEntry{s: s, key: e.Key})
		}
	}
	var linked []string
	for _, entries := range byEvent {
		linked = append(linked, p.expectLinks(entries)...)
	}
	defer p.forgetLinks(linked)
	for _, j := range jobs {
		if j.ev.Transition == "" && (j.ev.Type == event.Error || j.ev.Type == event.Warning) {
			// Open its group, or keep the one a reload handed over: later
			// repeats fold into it.
			p.groupOf(j.ev)
		}
		p.job(ctx, j.ev, j.s, j.kind, j.key)
	}
	return len(jobs)
}

// MessageKey is the stable identity of the message of ev in b's channel:
// the same event routed again (a replay) has the same key, and platforms
// that take an idempotency key get it.
func MessageKey(ev event.Event, b binding) string {
	h := sha256.Sum256([]byte(senderKey(b) + "\x00" + eventIdentity(ev)))
	return hex.EncodeToString(h[:12])
}

// eventIdentity is what MessageKey keeps of ev: the same for its messages
// in every channel.
func eventIdentity(ev event.Event) string {
	id := ev.ID
	if id == "" {
		id = ev.Digest()
	}
	return string(ev.Transition) + "\x00" + id
}

// sendersFor are the senders of the channels bound to ev's source that
// take it (label matchers) and have notifications on.
func (p *Pipeline) sendersFor(ev event.Event) []*sender { return p.route(ev, nil) }

func senderKey(b binding) string { return b.platform.Name() + "\x00" + b.channel.ID }

// compileMatchers parses a channel's label matchers.
func compileMatchers(ms []string) (amlabels.Matchers, error) {
	var out amlabels.Matchers
	for _, m := range ms {
		pm, err := config.ParseMatcher(m)
		if err != nil {
			return nil, err
		}
		out = append(out, pm)
	}
	return out, nil
}

// refusedBy is the first of b's matchers that ev fails, or nil if b takes
// ev: alerts (events with labels) must match all of the channel's
// matchers. A resolution always passes: it only edits a message the
// channel already holds.
func (b binding) refusedBy(ev event.Event) *amlabels.Matcher {
	if len(b.matchers) == 0 || ev.Labels == nil || ev.Transition == event.Resolved {
		return nil
	}
	for _, m := range b.matchers {
		if !m.Matches(ev.Labels[m.Name]) {
			return m
		}
	}
	return nil
}

// notificationsKey is the state key of a channel's notification switch.
func notificationsKey(platform, channelID string) string {
	return "notifications." + platform + "." + channelID
}

// NotificationsOn reports whether a channel takes alerts (the switch is
// "notifications on|off" in chat).
func (p *Pipeline) NotificationsOn(platform, channelID string) bool {
	v, _ := p.opts.State.Get(notificationsKey(platform, channelID))
	return v != "off"
}

// SetNotifications switches a channel's alerts on or off, in the state
// every replica reads.
func (p *Pipeline) SetNotifications(ctx context.Context, platform, channelID string, on bool) error {
	value := ""
	if !on {
		value = "off"
	}
	return p.opts.State.Set(ctx, notificationsKey(platform, channelID), value)
}
