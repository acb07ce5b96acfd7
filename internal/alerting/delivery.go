package alerting

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/kubechat/kubechat/internal/chat"
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
// delivered, with a context that outlives the sources. The queue counts
// the outcome; the outbox forgets key once it was delivered or given up
// on (or there was nothing to send), and keeps it when the agent stops
// first.
func (p *Pipeline) enqueue(s *sender, key string, build func() (chat.Message, bool), after func(context.Context, chat.MessageRef)) {
	p.enqueueUntil(s, key, build, after, nil)
}

// enqueueUntil is enqueue with finished, which runs once the job is over
// whatever its outcome (deferred too), after after.
func (p *Pipeline) enqueueUntil(s *sender, key string, build func() (chat.Message, bool), after func(context.Context, chat.MessageRef), finished func()) {
	b, done := p.linked(s, key, func() (chat.Message, bool) {
		m, ok := build()
		m.Key = key
		return m, ok
	}, func(ctx context.Context, ref chat.MessageRef, err error) {
		if finished != nil {
			defer finished()
		}
		if errors.Is(err, chat.ErrDeferred) {
			return // it stays in the outbox
		}
		if errors.Is(err, chat.ErrSkipped) {
			p.decisions.delivered(key, false, nil)
		} else {
			p.decisions.delivered(key, err == nil, err)
		}
		if err == nil && after != nil {
			after(ctx, ref)
		}
		p.opts.Outbox.Done(key)
	})
	s.q.Enqueue(chat.Job{Build: b, Done: done})
}

// DrainTimeout bounds the delivery of queued messages after Start's
// context ends; what is left stays in the outbox.
const DrainTimeout = chat.DrainTimeout

// Start runs the senders, the outbox writer and the group flusher until
// ctx is done, then keeps delivering what is queued for up to
// DrainTimeout, and writes the outbox a last time. It is a runnable.
func (p *Pipeline) Start(ctx context.Context) error {
	// Queued alerts outlive the run context by a bounded grace, so a
	// shutdown or hand-over delivers what it can in time.
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range p.senders {
		wg.Go(func() { s.q.Run(dctx) })
	}
	p.opts.Health.Loop("alerting", 2*time.Minute)
	defer p.opts.Health.Done("alerting")
	wg.Go(func() { p.flushGroups(ctx) })
	wg.Go(func() { p.flushSilences(ctx) })
	wg.Go(func() { p.opts.Outbox.Run(ctx) })
	for range followUpWorkers {
		// Queued actions, like queued alerts, get the drain's grace.
		wg.Go(func() { p.runFollowUps(dctx) })
	}
	<-ctx.Done()
	chat.Drain(p.Pending)
	cancel()
	wg.Wait()
	// Everything delivered is recorded, everything else stays pending, and
	// the checkpoint moves up to now: the next start replays nothing twice.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	if err := p.opts.Outbox.Flush(fctx, true); err != nil {
		p.log.Error("outbox not saved at shutdown; the next start replays from the last saved one", "err", err)
	}
	return nil
}

// Pending is the number of messages queued or being delivered, over all
// channels, and of actions waiting to run.
func (p *Pipeline) Pending() int {
	n := p.followUps.len()
	for _, s := range p.senders {
		n += s.q.Pending()
	}
	return n
}
