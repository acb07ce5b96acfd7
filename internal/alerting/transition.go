package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/event"
)

// A transition alert is one message when a workload starts failing,
// edited into "Resolved" when it recovers. The open alert's message is kept
// in the state, so restarts and leader changes neither repeat nor forget it.

// transitionKey names the state entry that holds the alert message of one
// workload in one channel.
func transitionKey(ev event.Event, b binding) string {
	what := ev.Object.Kind + "\x00" + ev.Object.Namespace + "\x00" + ev.Object.Name
	if ev.Group != "" {
		what = "group\x00" + ev.Group // an Alertmanager alert group
	}
	h := sha256.Sum256([]byte(ev.Source + "\x00" + ev.Cluster + "\x00" + what + "\x00" + b.platform.Name() + "\x00" + b.channel.ID))
	return "alert." + hex.EncodeToString(h[:12])
}

// transitionRecord is what the state keeps for an open alert.
type transitionRecord struct {
	Ref    chat.MessageRef `json:"ref"`
	Title  string          `json:"title"`
	Reason string          `json:"reason"`
	Since  time.Time       `json:"since"`
}

// transition queues a failing alert (once: not if one is open) or the edit
// that resolves it (only if one is open).
func (p *Pipeline) transition(ctx context.Context, ev event.Event, s *sender, msgKey string) {
	key := transitionKey(ev, s.b)
	if ev.Transition == event.Failing {
		m := p.render(ctx, ev, s)
		m.Alert = key
		edited := false
		acts := p.actionsFor(ev, s)
		p.raising.add(key)
		p.enqueueUntil(s, msgKey,
			func() (chat.Message, bool) {
				v, open := p.opts.State.Get(key)
				if !open {
					return m, true
				}
				// An alert group that changed (alerts joined or left) is
				// edited in place; a workload's repeat is not news.
				var rec transitionRecord
				if ev.Group == "" || json.Unmarshal([]byte(v), &rec) != nil {
					return m, false
				}
				edited = true
				m.Replace = &rec.Ref
				return m, true
			},
			func(ctx context.Context, ref chat.MessageRef) {
				if edited {
					p.threads.open(ctx, ev, s, ref)
					return
				}
				rec, _ := json.Marshal(transitionRecord{Ref: ref, Title: m.Title, Reason: ev.Reason, Since: ev.Time})
				if err := p.opts.State.Set(ctx, key, string(rec)); err != nil {
					p.log.Error("transition alert state not saved; a restart may alert again", "key", key, "err", err)
				}
				p.threads.open(ctx, ev, s, ref)
				p.triggerActions(acts, ev, s, ref)
			},
			func() { p.raising.done(key) })
		return
	}
	p.enqueue(s, msgKey,
		func() (chat.Message, bool) {
			v, open := p.opts.State.Get(key)
			var rec transitionRecord
			if !open || json.Unmarshal([]byte(v), &rec) != nil {
				return chat.Message{}, false
			}
			m := RenderResolved(ev, rec)
			m.Replace = &rec.Ref
			m.Alert, m.Resolved = key, true
			return m, true
		},
		func(ctx context.Context, _ chat.MessageRef) {
			p.threads.close(ctx, ev, s)
			if err := p.opts.State.Set(ctx, key, ""); err != nil {
				p.log.Error("transition alert state not cleared", "key", key, "err", err)
			}
		})
}

// noAlertToResolve is why a resolution has nothing to send in a channel.
const noAlertToResolve = "no open alert of this workload to mark resolved"

// resolvable keeps the senders of the resolution ev whose channel has an
// alert to mark resolved: one open in the state, or one queued and not yet
// finished (the resolution waits behind it). The other channels have
// nothing to send: they are counted as skipped here, before the outbox and
// the queue. A start reports every healthy object as resolved, since any
// of them may have recovered while no agent ran, and almost none has an
// alert: queued, they would hold up the alerts behind them.
func (p *Pipeline) resolvable(ev event.Event, senders []*sender, tr *Trace) []*sender {
	out := senders[:0:0]
	for _, s := range senders {
		key := transitionKey(ev, s.b)
		// raising before the state: a failing alert sets the state first
		// and then finishes, so one of the two sees it.
		if p.raising.has(key) {
			out = append(out, s)
			continue
		}
		if v, open := p.opts.State.Get(key); open && v != "" {
			out = append(out, s)
			continue
		}
		p.delivery.Count(s.b.platform.Name(), s.b.channel.Name, chat.ResultSkipped)
		p.decisions.decide(tr, channelName(s), OutcomeSkipped, noAlertToResolve)
	}
	return out
}

// raising counts, by transition key, the failing alerts queued and not
// yet finished (delivered, skipped, given up on or deferred).
type raising struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *raising) add(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[key]++
}

func (r *raising) done(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n[key]--; r.n[key] <= 0 {
		delete(r.n, key)
	}
}

func (r *raising) has(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[key] > 0
}
