package router

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

// Each bound channel has one sender: a chat.Queue (ordered, rate limited,
// retried, dead-lettered past the deadline). Jobs decide what to send when
// their turn comes, so a resolution always sees the ref of the alert queued
// before it.

type sender struct {
	b binding
	q *chat.Queue
}

// enqueue queues build; after runs once the message was delivered. The
// events metric counts the outcome.
func (r *Router) enqueue(s *sender, build func() (chat.Message, bool), after func(chat.MessageRef)) {
	s.q.Enqueue(chat.Job{Build: build, Done: func(ref chat.MessageRef, err error) {
		if err != nil {
			r.events.WithLabelValues("dropped").Inc()
			return
		}
		r.events.WithLabelValues("sent").Inc()
		r.delivered.Add(1)
		if after != nil {
			after(ref)
		}
	}})
}

// DrainTimeout bounds the delivery of queued messages after Start's context ends.
const DrainTimeout = 5 * time.Second

// Start runs the senders and the group flusher until ctx is done, then
// keeps delivering what is queued for up to DrainTimeout. It is a runnable.
func (r *Router) Start(ctx context.Context) error {
	// Queued alerts outlive the run context by a bounded grace, so a
	// shutdown or hand-over does not drop them.
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range r.senders {
		wg.Go(func() { s.q.Run(dctx) })
	}
	wg.Go(func() { r.flushGroups(ctx) })
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
	return nil
}

// Delivered is the number of messages delivered so far.
func (r *Router) Delivered() uint64 { return r.delivered.Load() }

// recentWindow is how long delivered objects are remembered for checkpoints.
const recentWindow = 3 * time.Second

func (r *Router) remember(uid string) {
	if uid == "" {
		return
	}
	r.recentMu.Lock()
	defer r.recentMu.Unlock()
	now := time.Now()
	r.recent[uid] = now
	for k, t := range r.recent {
		if now.Sub(t) > recentWindow {
			delete(r.recent, k)
		}
	}
}

// Recent returns the UIDs of objects whose events were delivered in the
// last few seconds, for the checkpoint.
func (r *Router) Recent() []string {
	r.recentMu.Lock()
	defer r.recentMu.Unlock()
	out := make([]string, 0, len(r.recent))
	for k, t := range r.recent {
		if time.Since(t) <= recentWindow {
			out = append(out, k)
		}
	}
	return out
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
func (r *Router) transition(ctx context.Context, ev event.Event, b binding, s *sender) {
	key := transitionKey(ev, b)
	if ev.Transition == event.Failing {
		m := Render(ev)
		edited := false
		acts := r.actionsFor(ev, s)
		r.enqueue(s,
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
			func(ref chat.MessageRef) {
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
	r.enqueue(s,
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
		func(chat.MessageRef) {
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
		r.groupMu.Lock()
		for fp, g := range r.groups {
			if g.dirty {
				g.dirty = false
				ev := g.ev
				ev.Count = g.count
				for _, s := range r.sendersFor(ev) {
					m := Render(ev)
					r.enqueue(s, func() (chat.Message, bool) {
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
