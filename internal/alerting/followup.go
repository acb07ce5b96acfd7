package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/event"
)

// Actions ("when an event matches, run a command and post its output with
// the alert") run after the alert was delivered, and their replies go into
// the alert's thread through the channel's own queue. They run on the
// pipeline's own workers, never on a delivery queue, so a slow command does
// not hold alerts back, and a drain waits for them as for queued alerts.

// followUpWorkers is how many actions run at once.
const followUpWorkers = 2

// jobQueue is an unbounded FIFO of action runs: a delivery callback only
// appends, it never waits. busy counts the runs taken and not yet done,
// so that a drain waits for them as it waits for queued ones. A job is
// given the pipeline that runs it, which is not the one that queued it
// when a config reload handed the job over (TakeOver).
type jobQueue struct {
	mu    sync.Mutex
	jobs  []followUp
	busy  int
	ready chan struct{}
}

// followUp is one queued action run.
type followUp func(ctx context.Context, run *Pipeline)

func newJobQueue() *jobQueue { return &jobQueue{ready: make(chan struct{}, 1)} }

func (q *jobQueue) push(f followUp) {
	q.mu.Lock()
	q.jobs = append(q.jobs, f)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *jobQueue) pop() (followUp, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.jobs) == 0 {
		return nil, false
	}
	f := q.jobs[0]
	q.jobs = q.jobs[1:]
	q.busy++
	if len(q.jobs) > 0 {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return f, true
}

// done marks a run taken by pop as finished.
func (q *jobQueue) done() {
	q.mu.Lock()
	q.busy--
	q.mu.Unlock()
}

// takeAll removes and returns the runs still queued.
func (q *jobQueue) takeAll() []followUp {
	q.mu.Lock()
	defer q.mu.Unlock()
	jobs := q.jobs
	q.jobs = nil
	return jobs
}

// len counts the runs queued or running.
func (q *jobQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.jobs) + q.busy
}

// runFollowUps runs queued actions until ctx is done.
func (p *Pipeline) runFollowUps(ctx context.Context) {
	for {
		if f, ok := p.followUps.pop(); ok {
			f(ctx, p)
			p.followUps.done()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-p.followUps.ready:
		}
	}
}

// actionsFor are the actions ev triggers in s's channel, as they are
// switched on or off now: the switch counts when the event is routed, not
// when its alert is finally delivered.
func (p *Pipeline) actionsFor(ev event.Event, s *sender) []string {
	a := p.runner()
	if a == nil {
		return nil
	}
	return a.Triggered(ev, s.b.platform.Name(), s.b.channel)
}

// triggerActions queues acts (from actionsFor) for ev in s's channel;
// their replies go into the thread of ref, the alert's message, through
// the channel's queue in the pipeline that runs the action.
func (p *Pipeline) triggerActions(acts []string, ev event.Event, s *sender, ref chat.MessageRef) {
	key := senderKey(s.b)
	for _, name := range acts {
		p.followUps.push(func(ctx context.Context, run *Pipeline) {
			a := run.runner()
			s, ok := run.senders[key]
			if a == nil || !ok {
				run.log.Warn("action dropped: its channel is no longer configured", "action", name, "channel", ref.Channel)
				return
			}
			key := actionKey(ref, name)
			d := &actionDraft{run: run, s: s, key: key + ".draft", thread: ref}
			m := a.Run(ctx, name, ev, s.b.platform.Name(), s.b.channel, ref, d)
			m.Thread = &ref
			shown := d.close()
			run.enqueue(s, key, func() (chat.Message, bool) {
				// The reply replaces the draft the channel shows, if any:
				// the queue is in order, so the draft's jobs are done.
				out := m
				if r := shown(); r.ID != "" {
					out.Replace = &r
				}
				return out, true
			}, nil)
		})
	}
}

// actionDraft shows the states of an operation an action follows (a
// rollout) in the alert's thread, through the channel's queue like every
// other message: the first show is posted, each later one edits it, and
// the action's reply replaces it in the end. Shows that come while one is
// queued fold into it, so a slow channel sends only the newest state.
type actionDraft struct {
	run    *Pipeline
	s      *sender
	key    string
	thread chat.MessageRef

	mu      sync.Mutex
	latest  chat.Message
	version int             // of latest; 0: nothing shown yet
	sent    int             // the version the channel shows
	queued  bool            // a job is queued that sends latest
	closed  bool            // the reply is on its way: show nothing more
	ref     chat.MessageRef // the draft's message, once posted
}

// Show queues m to be shown, unless a queued show will show it.
func (d *actionDraft) Show(m chat.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.latest = m
	d.version++
	d.queueLocked()
}

func (d *actionDraft) queueLocked() {
	if d.queued {
		return
	}
	d.queued = true
	var built int
	// A draft is not a delivery the outbox keeps or explain reports:
	// once the action ends, its reply is.
	d.s.q.Enqueue(chat.Job{
		Build: func() (chat.Message, bool) {
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.closed || d.version == d.sent {
				return chat.Message{}, false
			}
			m := d.latest
			m.Key = d.key
			built = d.version
			if d.ref.ID != "" {
				m.Replace = &d.ref
			} else {
				m.Thread = &d.thread
			}
			return m, true
		},
		Done: func(_ context.Context, ref chat.MessageRef, err error) {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.queued = false
			if err != nil {
				// Not shown (skipped, given up on, or the agent stops):
				// the next show, or the reply, tries again.
				return
			}
			if d.ref.ID == "" {
				d.ref = ref
			}
			d.sent = built
			if !d.closed && d.version != d.sent {
				d.queueLocked()
			}
		},
	})
}

// close ends the showing and returns what tells, when the reply's turn
// comes, which message the draft was shown in (zero if none).
func (d *actionDraft) close() func() chat.MessageRef {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return func() chat.MessageRef {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.ref
	}
}

// actionKey is the stable identity of an action's reply under the alert ref.
func actionKey(ref chat.MessageRef, action string) string {
	h := sha256.Sum256([]byte(ref.Platform + "\x00" + ref.Channel + "\x00" + ref.ID + "\x00" + action))
	return "action." + hex.EncodeToString(h[:12])
}
