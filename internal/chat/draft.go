package chat

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Draft shows a reply while its handler is still writing it (the AI
// assistant's answer as its tokens arrive). Each Show replaces what the
// last one showed; Show never blocks, and shows that come faster than the
// platform lets one message be edited are folded into the latest.
type Draft interface {
	Show(m Message)
}

// DraftHandler is a Handler whose replies can be shown as they grow. A
// Dispatcher hands it a Draft; the final reply replaces the last draft
// shown, in place.
type DraftHandler interface {
	Handler
	HandleDraft(ctx context.Context, in Inbound, d Draft) Message
}

// EditPacer is implemented by platforms whose APIs limit how often one
// message may be edited. EditInterval is the least time between two edits
// of a message that the platform allows over a sustained run.
type EditPacer interface {
	EditInterval() time.Duration
}

// DefaultEditInterval paces the edits of platforms that name no interval
// of their own: one a second, what Slack (chat.update) and Discord (5
// edits per 5 s per channel) sustain.
const DefaultEditInterval = time.Second

// EditIntervalOf is n's EditInterval, else DefaultEditInterval.
func EditIntervalOf(n Notifier) time.Duration {
	if p, ok := n.(EditPacer); ok && p.EditInterval() > 0 {
		return p.EditInterval()
	}
	return DefaultEditInterval
}

// draftAttemptTimeout bounds one post or edit of a draft. Drafts are best
// effort: a draft that fails is skipped, and the next show tries again;
// the final reply is sent with the usual retries.
const draftAttemptTimeout = 15 * time.Second

// draft posts the first Show as a reply in thread and edits it for every
// later one, on its own goroutine, paced by a limiter of one edit per
// interval.
type draft struct {
	n       Notifier
	to      Channel
	thread  MessageRef
	limiter *rate.Limiter
	log     *slog.Logger

	mu      sync.Mutex
	pending *Message
	ref     MessageRef
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	started bool
}

func newDraft(n Notifier, to Channel, thread MessageRef, every time.Duration, log *slog.Logger) *draft {
	return &draft{
		n: n, to: to, thread: thread, log: log,
		limiter: rate.NewLimiter(rate.Every(every), 1),
		wake:    make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// Show replaces the pending draft with m.
func (d *draft) Show(m Message) {
	d.mu.Lock()
	d.pending = &m
	if !d.started {
		d.started = true
		go d.run()
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run sends the latest pending draft whenever the limiter allows, until
// finish stops it.
func (d *draft) run() {
	defer close(d.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		if d.limiter.Wait(ctx) != nil {
			return
		}
		d.mu.Lock()
		m, ref := d.pending, d.ref
		d.pending = nil
		d.mu.Unlock()
		if m == nil {
			continue
		}
		if ref.ID != "" {
			m.Replace = &ref
		} else {
			m.Thread = &d.thread
		}
		actx, acancel := context.WithTimeout(ctx, draftAttemptTimeout)
		got, err := d.n.Post(actx, d.to, *m)
		acancel()
		if err != nil {
			d.log.Debug("draft not shown", "channel", d.to.ID, "err", err)
			if ra, ok := RetryAfterOf(err); ok {
				// The platform asked for a pause: take it before the next edit.
				select {
				case <-time.After(ra):
				case <-ctx.Done():
					return
				}
			}
			continue
		}
		if ref.ID == "" {
			d.mu.Lock()
			d.ref = got
			d.mu.Unlock()
		}
	}
}

// finish stops the drafts and returns the message they were shown in
// (zero if none was), once the limiter allows the edit that replaces it.
func (d *draft) finish(ctx context.Context) MessageRef {
	d.mu.Lock()
	started := d.started
	d.mu.Unlock()
	if !started {
		return MessageRef{}
	}
	close(d.stop)
	<-d.done
	d.mu.Lock()
	ref := d.ref
	d.mu.Unlock()
	if ref.ID != "" {
		_ = d.limiter.Wait(ctx)
	}
	return ref
}
