package alerting

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubechat/kubechat/internal/event"
)

// The pipeline records, for each event it routes, what decided each
// channel's outcome: the source's bindings, a channel's label matchers,
// its notification switch, a silence, grouping of repeats, an open alert,
// an Alertmanager thread, and the delivery itself (the rate limited,
// retried queue). "explain KIND/NAME" reads it. The record is bounded and
// kept in memory only: it answers "why did (or didn't) this notify?" for
// recent events, and is not an audit log.

// DefaultDecisionsKept is how many routed events Decisions keeps.
const DefaultDecisionsKept = 2000

// Outcomes of an event in one channel.
const (
	OutcomeQueued    = "queued"     // waiting in the channel's queue
	OutcomePosted    = "posted"     // delivered
	OutcomeSkipped   = "not posted" // its turn came and there was nothing to send
	OutcomeFailed    = "failed"     // given up on: the delivery deadline passed, or a permanent error
	OutcomeFiltered  = "filtered"   // the channel's label matchers refused it
	OutcomeSwitched  = "off"        // the channel's notifications are off
	OutcomeSilenced  = "silenced"   // a silence muted it
	OutcomeInhibited = "inhibited"  // an inhibit rule muted it while an Alertmanager alert fires
	OutcomeGrouped   = "grouped"    // a repeat: counted in the first message
	OutcomeDuplicate = "duplicate"  // already queued or delivered (a replay)
	OutcomeUnbound   = "unbound"    // no channel is bound to its source
)

// Decision is the outcome of one event in one channel, and the rule that
// decided it.
type Decision struct {
	// Channel is "platform/channel"; empty when the decision concerns
	// the event as a whole (no channel is bound to its source).
	Channel string
	Outcome string
	Rule    string
}

// Trace is what happened to one routed event.
type Trace struct {
	Time      time.Time
	Source    string
	Object    event.Object
	Title     string
	Decisions []Decision
}

// Decisions is the bounded record of routing decisions. One agent keeps
// one, for every pipeline it builds, so a config reload keeps the record.
type Decisions struct {
	mu     sync.Mutex
	traces []*Trace // a ring of at most max
	next   int
	max    int
	byKey  map[string]decisionRef // queued messages, by message key
	// keysOf are the message keys queued for each trace in the ring, so
	// that a trace leaving it takes its keys out of byKey.
	keysOf map[*Trace][]string
}

type decisionRef struct {
	t *Trace
	i int
	// skip says why a message whose turn came had nothing to send.
	skip string
}

// NewDecisions keeps the last max routed events (DefaultDecisionsKept if
// max is not positive).
func NewDecisions(max int) *Decisions {
	if max <= 0 {
		max = DefaultDecisionsKept
	}
	return &Decisions{max: max, byKey: map[string]decisionRef{}, keysOf: map[*Trace][]string{}}
}

// begin records a new trace for ev.
func (d *Decisions) begin(ev event.Event) *Trace {
	t := &Trace{Time: time.Now(), Source: ev.Source, Object: ev.Object, Title: ev.Title()}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.traces) < d.max {
		d.traces = append(d.traces, t)
		return t
	}
	old := d.traces[d.next]
	for _, k := range d.keysOf[old] {
		if d.byKey[k].t == old {
			delete(d.byKey, k)
		}
	}
	delete(d.keysOf, old)
	d.traces[d.next] = t
	d.next = (d.next + 1) % d.max
	return t
}

// decide records a decision in t (nil: not recorded).
func (d *Decisions) decide(t *Trace, channel, outcome, rule string) {
	if t == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t.Decisions = append(t.Decisions, Decision{Channel: channel, Outcome: outcome, Rule: rule})
}

// queued records that the message key was queued for channel; its
// delivery's outcome updates the decision (delivered).
func (d *Decisions) queued(t *Trace, channel, key, rule, skip string) {
	if t == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t.Decisions = append(t.Decisions, Decision{Channel: channel, Outcome: OutcomeQueued, Rule: rule})
	d.byKey[key] = decisionRef{t: t, i: len(t.Decisions) - 1, skip: skip}
	d.keysOf[t] = append(d.keysOf[t], key)
}

// delivered records the outcome of the message key: sent, nothing to send
// (sent false, err nil), or given up on.
func (d *Decisions) delivered(key string, sent bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.byKey[key]
	if !ok {
		return
	}
	delete(d.byKey, key)
	dec := &r.t.Decisions[r.i]
	switch {
	case err != nil:
		dec.Outcome, dec.Rule = OutcomeFailed, dec.Rule+"; delivery gave up: "+err.Error()
	case !sent:
		dec.Outcome, dec.Rule = OutcomeSkipped, r.skip
	default:
		dec.Outcome = OutcomePosted
	}
}

// Explain returns the recorded traces of events about the object kind
// namespace/name (kind case-insensitive, namespace empty for any), oldest
// first.
func (d *Decisions) Explain(kind, namespace, name string) []Trace {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Trace
	n := len(d.traces)
	for i := range n {
		t := d.traces[(d.next+i)%n]
		if !strings.EqualFold(t.Object.Kind, kind) || t.Object.Name != name || (namespace != "" && t.Object.Namespace != namespace) {
			continue
		}
		c := *t
		c.Decisions = append([]Decision(nil), t.Decisions...)
		out = append(out, c)
	}
	return out
}

// channelName names s's channel in a decision.
func channelName(s *sender) string { return s.b.platform.Name() + "/" + s.b.channel.Name }

// route returns the senders of the channels bound to ev's source that
// take it (label matchers) and have notifications on, recording in tr
// (nil: not recorded) why each other channel does not.
func (p *Pipeline) route(ev event.Event, tr *Trace) []*sender {
	var out []*sender
	bound := p.bySource[ev.Source]
	if len(bound) == 0 {
		p.decisions.decide(tr, "", OutcomeUnbound, "no channel binds source "+strconv.Quote(ev.Source)+" (channels[].bindings.sources)")
	}
	for _, b := range bound {
		s := p.senders[senderKey(b)]
		if m := b.refusedBy(ev); m != nil {
			p.decisions.decide(tr, channelName(s), OutcomeFiltered, b.path+".bindings.matchers: "+m.String())
			continue
		}
		if !p.NotificationsOn(b.platform.Name(), b.channel.ID) {
			p.decisions.decide(tr, channelName(s), OutcomeSwitched, "notifications are off in this channel (notifications on)")
			continue
		}
		out = append(out, s)
	}
	return out
}

// unmuted drops the senders of ev that an inhibit rule or a silence mutes,
// counting it and recording it in tr. An inhibit rule mutes ev in every
// channel, a silence in its own. A resolution passes both, and ends the
// channel's until-resolved silences it matches.
func (p *Pipeline) unmuted(ctx context.Context, ev event.Event, senders []*sender, tr *Trace) []*sender {
	now := time.Now()
	if len(senders) > 0 {
		if inh := p.inhibitor.inhibits(ev, now); inh != nil {
			p.metrics.inhibited.WithLabelValues(inh.rule.name).Inc()
			p.log.Debug("alert inhibited", "rule", inh.rule.name, "group", inh.group, "object", ev.Object.String(), "reason", ev.Reason)
			for _, s := range senders {
				p.decisions.decide(tr, channelName(s), OutcomeInhibited, inh.String())
			}
			return nil
		}
	}
	out := senders[:0:0]
	for _, s := range senders {
		if ev.Transition == event.Resolved {
			p.silences.resolve(ctx, ev, s.b.platform.Name(), s.b.channel.Name)
		}
		if sil := p.silences.silencedBy(ev, s.b.platform.Name(), s.b.channel.Name, now); sil != nil {
			p.log.Debug("alert silenced", "silence", sil.ID, "channel", s.b.channel.Name, "object", ev.Object.String(), "reason", ev.Reason)
			p.decisions.decide(tr, channelName(s), OutcomeSilenced, "silence "+sil.ID+" ("+strings.Join(sil.Matchers, ", ")+") by "+sil.CreatedBy)
			continue
		}
		out = append(out, s)
	}
	return out
}

// recordQueued records in tr that ev's message was queued for s, and why
// it might have nothing to send when its turn comes.
func (p *Pipeline) recordQueued(tr *Trace, ev event.Event, s *sender, kind, key string) {
	rule, skip := "bound to source "+strconv.Quote(ev.Source)+" ("+s.b.path+")", ""
	switch kind {
	case kindThread:
		rule += "; into the thread of the open Alertmanager alert about this workload"
	case kindTransition:
		if ev.Transition == event.Resolved {
			skip = noAlertToResolve
		} else {
			skip = "an alert about this workload is already open: a repeat is not news"
		}
	case kindGrouped:
		rule += fmt.Sprintf("; repeats within %s fold into this message", GroupWindow)
	}
	p.decisions.queued(tr, channelName(s), key, rule, skip)
}

// Explain returns the recorded traces of recent events about the object
// kind namespace/name (namespace empty: any), oldest first.
func (p *Pipeline) Explain(kind, namespace, name string) []Trace {
	return p.decisions.Explain(kind, namespace, name)
}
