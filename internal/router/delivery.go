package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/event"
)

// Each bound channel has one sender: a chat.Queue (ordered, rate limited,
// retried, dead-lettered past the deadline). Jobs decide what to send when
// their turn comes, so a resolution always sees the ref of the alert queued
// before it.

type sender struct {
	b binding
	q *chat.Queue
}

// enqueue queues build under key; after runs once the message was
// delivered, with a context that outlives the sources. The events metric
// counts the outcome; the outbox forgets key once it was delivered or
// given up on, and keeps it when the agent stops first.
func (r *Router) enqueue(s *sender, key string, build func() (chat.Message, bool), after func(context.Context, chat.MessageRef)) {
	s.q.Enqueue(chat.Job{
		Build: func() (chat.Message, bool) {
			m, ok := build()
			m.Key = key
			if !ok {
				r.opts.Outbox.Done(key) // nothing to send: done
			}
			return m, ok
		},
		Done: func(ctx context.Context, ref chat.MessageRef, err error) {
			switch {
			case errors.Is(err, chat.ErrDeferred):
				r.events.WithLabelValues("deferred").Inc()
				return
			case err != nil:
				r.events.WithLabelValues("dropped").Inc()
			default:
				r.events.WithLabelValues("sent").Inc()
				if after != nil {
					after(ctx, ref)
				}
			}
			r.opts.Outbox.Done(key)
		},
	})
}

// DrainTimeout bounds the delivery of queued messages after Start's
// context ends; what is left stays in the outbox.
const DrainTimeout = 5 * time.Second

// Start runs the senders, the outbox writer and the group flusher until
// ctx is done, then keeps delivering what is queued for up to
// DrainTimeout, and writes the outbox a last time. It is a runnable.
func (r *Router) Start(ctx context.Context) error {
	// Queued alerts outlive the run context by a bounded grace, so a
	// shutdown or hand-over delivers what it can in time.
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range r.senders {
		wg.Go(func() { s.q.Run(dctx) })
	}
	r.opts.Health.Loop("router", 2*time.Minute)
	defer r.opts.Health.Done("router")
	wg.Go(func() { r.flushGroups(ctx) })
	wg.Go(func() { r.opts.Outbox.Run(ctx) })
	for range autorunWorkers {
		// Queued actions, like queued alerts, get the drain's grace.
		wg.Go(func() { r.runJobs(dctx) })
	}
	<-ctx.Done()
	deadline := time.Now().Add(DrainTimeout)
	for r.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	// Everything delivered is recorded, everything else stays pending, and
	// the checkpoint moves up to now: the next start replays nothing twice.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	if err := r.opts.Outbox.Flush(fctx, true); err != nil {
		r.log.Error("outbox not saved at shutdown; the next start replays from the last saved one", "err", err)
	}
	return nil
}

// Pending is the number of messages queued or being delivered, over all
// channels, and of actions waiting to run.
func (r *Router) Pending() int {
	n := r.jobs.len()
	for _, s := range r.senders {
		n += s.q.Pending()
	}
	return n
}

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
func (r *Router) transition(ctx context.Context, ev event.Event, b binding, s *sender, msgKey string) {
	key := transitionKey(ev, b)
	if ev.Transition == event.Failing {
		m := Render(ev)
		edited := false
		acts := r.actionsFor(ev, s)
		r.enqueue(s, msgKey,
			func() (chat.Message, bool) {
				v, open := r.state.Get(key)
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
					r.threads.open(ctx, ev, s, ref)
					return
				}
				rec, _ := json.Marshal(transitionRecord{Ref: ref, Title: m.Title, Reason: ev.Reason, Since: ev.Time})
				if err := r.state.Set(ctx, key, string(rec)); err != nil {
					r.log.Error("transition alert state not saved; a restart may alert again", "key", key, "err", err)
				}
				r.threads.open(ctx, ev, s, ref)
				r.triggerActions(acts, ev, s, ref)
			})
		return
	}
	r.enqueue(s, msgKey,
		func() (chat.Message, bool) {
			v, open := r.state.Get(key)
			var rec transitionRecord
			if !open || json.Unmarshal([]byte(v), &rec) != nil {
				return chat.Message{}, false
			}
			m := RenderResolved(ev, rec)
			m.Replace = &rec.Ref
			return m, true
		},
		func(ctx context.Context, _ chat.MessageRef) {
			r.threads.close(ctx, ev, s)
			if err := r.state.Set(ctx, key, ""); err != nil {
				r.log.Error("transition alert state not cleared", "key", key, "err", err)
			}
		})
}

// RenderResolved is the edited text of a transition alert once it resolved.
func RenderResolved(ev event.Event, rec transitionRecord) chat.Message {
	text := "Recovered after " + time.Since(rec.Since).Round(time.Second).String() + "."
	if ev.Message != "" {
		text = ev.Message + ". " + text
	}
	return chat.Message{
		Title: "Resolved: " + ev.Object.String() + " (was " + rec.Reason + ")",
		Level: chat.LevelSuccess,
		Sections: []chat.Section{{Text: text, Fields: []chat.Field{
			{Name: "Kind", Value: ev.Object.Kind}, {Name: "Name", Value: ev.Object.Name},
			{Name: "Namespace", Value: ev.Object.Namespace}, {Name: "Was", Value: rec.Reason},
		}}},
		Context: "cluster: " + ev.Cluster,
	}
}

// Repeated events (the same object, reason and source) within GroupWindow
// become one message whose count is edited in place.

// GroupWindow is how long repeats of an event fold into its first message.
const GroupWindow = 10 * time.Minute

// groupFlushInterval is how often counts of grouped messages are updated.
const groupFlushInterval = 2 * time.Second

type group struct {
	ev    event.Event
	first time.Time
	count int
	dirty bool
	refs  map[*sender]chat.MessageRef
}

// groupOf returns the open group of ev, opening one if there is none.
func (r *Router) groupOf(ev event.Event) *group {
	r.groupMu.Lock()
	defer r.groupMu.Unlock()
	if g, ok := r.groups[ev.Fingerprint()]; ok {
		return g
	}
	g := &group{ev: ev, first: time.Now(), count: 1, refs: map[*sender]chat.MessageRef{}}
	r.groups[ev.Fingerprint()] = g
	return g
}

// grouped reports whether ev repeats an open group (and counts it), or
// opens a new group for it.
func (r *Router) grouped(ev event.Event) (*group, bool) {
	r.groupMu.Lock()
	defer r.groupMu.Unlock()
	fp := ev.Fingerprint()
	if g, ok := r.groups[fp]; ok && time.Since(g.first) < GroupWindow {
		g.count++
		g.dirty = true
		g.ev.Message = ev.Message
		return g, true
	}
	g := &group{ev: ev, first: time.Now(), count: 1, refs: map[*sender]chat.MessageRef{}}
	r.groups[fp] = g
	return g, false
}

func (r *Router) flushGroups(ctx context.Context) {
	t := time.NewTicker(groupFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.opts.Health.Beat("router")
		r.groupMu.Lock()
		for fp, g := range r.groups {
			if g.dirty {
				g.dirty = false
				ev := g.ev
				ev.Count = g.count
				for _, s := range r.sendersFor(ev) {
					m := Render(ev)
					r.enqueue(s, MessageKey(ev, s.b)+fmt.Sprintf(".%d", ev.Count), func() (chat.Message, bool) {
						r.groupMu.Lock()
						ref, ok := g.refs[s]
						r.groupMu.Unlock()
						m.Replace = &ref
						return m, ok
					}, nil)
				}
			}
			if time.Since(g.first) > GroupWindow && !g.dirty {
				delete(r.groups, fp)
			}
		}
		r.groupMu.Unlock()
	}
}

// sendersFor are the senders of the channels bound to ev's source that
// take it (label matchers) and have notifications on.
func (r *Router) sendersFor(ev event.Event) []*sender {
	var out []*sender
	for _, b := range r.bySource[ev.Source] {
		if b.admits(ev) && r.notificationsOn(b.platform.Name(), b.channel.ID) {
			out = append(out, r.senders[senderKey(b)])
		}
	}
	return out
}

func senderKey(b binding) string { return b.platform.Name() + "\x00" + b.channel.ID }

// memoryState stands in for the ConfigMap store when the agent has no cluster.
type memoryState struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *memoryState) Get(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}

func (s *memoryState) Set(_ context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == "" {
		delete(s.m, key)
	} else {
		s.m[key] = value
	}
	return nil
}
