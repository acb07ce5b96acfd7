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
	to := Channel{Name: in.Channel.Name, ID: in.Thread.Channel}
	if to.ID == "" {
		to.ID = in.Channel.ID
	}
	var reply Message
	var shown MessageRef
	if dh, ok := d.h.(DraftHandler); ok {
		dr := newDraft(d.n, to, in.Thread, EditIntervalOf(d.n), d.log)
		reply = dh.HandleDraft(ctx, in, dr)
		// The reply replaces the draft, no sooner than the platform allows
		// the next edit.
		shown = dr.finish(ctx)
	} else {
		reply = d.h.Handle(ctx, in)
	}
	if reply.Title == "" && len(reply.Sections) == 0 {
		return // nothing to say (a command for another cluster)
	}
	if reply.Thread == nil {
		reply.Thread = &in.Thread
	}
	if shown.ID != "" {
		reply.Replace = &shown
	}
	if _, _, err := Send(ctx, d.n, to, reply, Backoff{}, time.Now().Add(ReplyDeadline)); err != nil {
		d.log.Error("reply not delivered", "channel", to.ID, "user_id", in.UserID, "err", err)
	}
}
