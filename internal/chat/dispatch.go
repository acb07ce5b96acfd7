package chat

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// ReplyDeadline bounds the delivery of one command reply, retries included.
const ReplyDeadline = 2 * time.Minute

// DefaultConcurrentCommands is how many handlers a Dispatcher runs at once
// unless told otherwise.
const DefaultConcurrentCommands = 16

// Dispatcher is what a Listener uses to answer inbound messages: each runs
// the Handler on its own goroutine, at most a fixed number at once, and
// the reply is sent (split, threaded, retried) into the inbound's thread.
type Dispatcher struct {
	n   Notifier
	h   Handler
	log *slog.Logger
	sem chan struct{}
	wg  sync.WaitGroup
}

// NewDispatcher answers through n with h, running at most limit handlers
// at once (DefaultConcurrentCommands when limit is 0 or less).
func NewDispatcher(n Notifier, h Handler, limit int, log *slog.Logger) *Dispatcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if limit <= 0 {
		limit = DefaultConcurrentCommands
	}
	return &Dispatcher{n: n, h: h, log: log, sem: make(chan struct{}, limit)}
}

// Dispatch handles in; it waits for a free slot, or returns when ctx ends.
func (d *Dispatcher) Dispatch(ctx context.Context, in Inbound) {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	d.wg.Go(func() {
		defer func() { <-d.sem }()
		d.answer(ctx, in)
	})
}

// Wait returns once every dispatched message has been answered.
func (d *Dispatcher) Wait() { d.wg.Wait() }

func (d *Dispatcher) answer(ctx context.Context, in Inbound) {
	reply := d.h.Handle(ctx, in)
	if reply.Title == "" && len(reply.Sections) == 0 {
		return // nothing to say (a command for another cluster)
	}
	if reply.Thread == nil {
		reply.Thread = &in.Thread
	}
	to := Channel{Name: in.Channel.Name, ID: in.Thread.Channel}
	if to.ID == "" {
		to.ID = in.Channel.ID
	}
	updates := reply.Updates
	reply.Updates = nil
	ref, _, err := Send(ctx, d.n, to, reply, Backoff{}, time.Now().Add(ReplyDeadline))
	if err != nil {
		d.log.Error("reply not delivered", "channel", to.ID, "user_id", in.UserID, "err", err)
	}
	if updates == nil {
		return
	}
	// Each later version edits the reply in place; the last one stays.
	// Versions that come while an edit is on its way are skipped for the
	// newest, so a slow platform never holds an operation's report back.
	for m := range updates {
		m = newest(m, updates)
		if err != nil || ref.ID == "" {
			continue // nothing to edit; drain, so that the sender ends
		}
		m.Thread, m.Replace = reply.Thread, &ref
		if _, _, err := Send(ctx, d.n, to, m, Backoff{}, time.Now().Add(ReplyDeadline)); err != nil {
			d.log.Error("reply update not delivered", "channel", to.ID, "user_id", in.UserID, "err", err)
		}
	}
}

// newest is m, or a later version already waiting in updates.
func newest(m Message, updates <-chan Message) Message {
	for {
		select {
		case next, ok := <-updates:
			if !ok {
				return m
			}
			m = next
		default:
			return m
		}
	}
}
