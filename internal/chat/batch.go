package chat

import (
	"context"
	"errors"
	"time"
)

// Batcher is implemented by sinks that deliver many messages in one
// request (a search index's bulk API). A Queue over a Batcher sends what is
// queued together: at most Batch().Size messages a request, waiting up to
// Batch().Wait after the first for more to arrive, so a burst of alerts
// costs a few requests and a lone alert waits no longer than Wait. Every
// message keeps its own outcome: the ones a request refused for good are
// dead-lettered, the ones it could not take yet are retried, alone, with
// backoff, and the delivered ones are done.
type Batcher interface {
	Notifier
	// Batch bounds the batches.
	Batch() BatchLimits
	// PostBatch delivers ms in one request. It returns, for each message,
	// its ref or its error (retryable unless Permanent; RetryAfter for a
	// rate limit); a failure of the whole request is every message's error.
	PostBatch(ctx context.Context, to Channel, ms []Message) ([]MessageRef, []error)
}

// BatchLimits bound a Batcher's batches.
type BatchLimits struct {
	// Size is the most messages in one request (default 100).
	Size int
	// Wait is how long the first message of a batch waits for others
	// (default 1 s).
	Wait time.Duration
}

func (l BatchLimits) withDefaults() BatchLimits {
	if l.Size <= 0 {
		l.Size = 100
	}
	if l.Wait <= 0 {
		l.Wait = time.Second
	}
	return l
}

// take waits for a job, then for more until there are size of them, wait
// has passed, or ctx ends.
func (q *Queue) take(ctx context.Context, l BatchLimits) ([]Job, bool) {
	first, ok := q.next(ctx)
	if !ok {
		return nil, false
	}
	jobs := []Job{first}
	timer := time.NewTimer(l.Wait)
	defer timer.Stop()
	for {
		q.mu.Lock()
		n := min(len(q.jobs), l.Size-len(jobs))
		jobs = append(jobs, q.jobs[:n]...)
		clear(q.jobs[:n])
		q.jobs = q.jobs[n:]
		q.inflight = len(jobs)
		q.mu.Unlock()
		if len(jobs) >= l.Size {
			return jobs, true
		}
		select {
		case <-ctx.Done():
			return jobs, true
		case <-timer.C:
			return jobs, true
		case <-q.wake:
		}
	}
}

// putBack returns jobs to the front of the queue, in order.
func (q *Queue) putBack(jobs []Job) {
	if len(jobs) == 0 {
		return
	}
	q.mu.Lock()
	q.jobs = append(append([]Job(nil), jobs...), q.jobs...)
	q.inflight -= len(jobs)
	q.mu.Unlock()
}

// batched is one message of a batch with the job it came from.
type batched struct {
	j Job
	m Message
}

// runBatches is Run for a Batcher.
func (q *Queue) runBatches(ctx context.Context, b Batcher) {
	l := b.Batch().withDefaults()
	for {
		jobs, ok := q.take(ctx, l)
		if !ok {
			q.defer_(ctx)
			return
		}
		var items []batched
		for i, j := range jobs {
			m, send := j.Build()
			if !send && len(items) > 0 {
				// Nothing to send yet may mean: not until an earlier
				// message of this batch is delivered (the resolution of an
				// alert it opens). It gets its turn again after them.
				q.putBack(jobs[i:])
				break
			}
			if !send {
				q.skip(ctx, j)
				continue
			}
			m.Queued = j.queued
			items = append(items, batched{j, m})
		}
		if len(items) > 0 {
			q.sendBatch(ctx, b, items)
		}
	}
}

// sendBatch delivers items through b, retrying those it could not take
// until the newest one's deadline passes or ctx ends.
func (q *Queue) sendBatch(ctx context.Context, b Batcher, items []batched) {
	if err := q.limiter.Wait(ctx); err != nil {
		for _, it := range items {
			q.finish(ctx, it.j, it.m, MessageRef{}, 0, errors.Join(ErrDeferred, err), ResultDeferred)
		}
		return
	}
	deadline := items[len(items)-1].j.queued.Add(q.o.Backoff.Deadline)
	pending := items
	attempts := 0
	_, err := Retry(ctx, q.o.Backoff, deadline, func(actx context.Context) error {
		attempts++
		ms := make([]Message, len(pending))
		for i, it := range pending {
			ms[i] = it.m
		}
		refs, errs := b.PostBatch(actx, q.to, ms)
		var left []batched
		var retry error
		for i, it := range pending {
			var err error
			if i < len(errs) {
				err = errs[i]
			} else {
				err = errors.New("no answer for this message in the batch")
			}
			switch {
			case err == nil && i < len(refs):
				q.finish(ctx, it.j, it.m, refs[i], attempts, nil, ResultDelivered)
			case err == nil:
				left = append(left, it)
				retry = errors.New("no ref for a delivered message")
			case IsPermanent(err):
				q.finish(ctx, it.j, it.m, MessageRef{}, attempts, err, ResultDeadLetter)
			default:
				left = append(left, it)
				retry = slower(retry, err)
			}
		}
		pending = left
		return retry
	})
	for _, it := range pending {
		if ctx.Err() != nil {
			q.finish(ctx, it.j, it.m, MessageRef{}, attempts, errors.Join(ErrDeferred, err), ResultDeferred)
		} else {
			q.finish(ctx, it.j, it.m, MessageRef{}, attempts, err, ResultDeadLetter)
		}
	}
}

// slower is whichever of a and b asks for the longer wait: a rate limit's
// Retry-After beats a plain error.
func slower(a, b error) error {
	da, oka := RetryAfterOf(a)
	db, okb := RetryAfterOf(b)
	switch {
	case a == nil, okb && (!oka || db > da):
		return b
	}
	return a
}
