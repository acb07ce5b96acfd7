package chat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// bulk is a Batcher that records its batches; fail decides each message's
// error on each call.
type bulk struct {
	flaky
	limits  BatchLimits
	mu      sync.Mutex
	batches [][]string
	fail    func(call int, m Message) error
}

func (b *bulk) Batch() BatchLimits { return b.limits }

func (b *bulk) PostBatch(_ context.Context, _ Channel, ms []Message) ([]MessageRef, []error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var titles []string
	refs, errs := make([]MessageRef, len(ms)), make([]error, len(ms))
	for i, m := range ms {
		titles = append(titles, m.Title)
		if b.fail != nil {
			errs[i] = b.fail(len(b.batches)+1, m)
		}
		refs[i] = MessageRef{ID: m.Title}
	}
	b.batches = append(b.batches, titles)
	return refs, errs
}

func (b *bulk) sizes() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []int
	for _, batch := range b.batches {
		out = append(out, len(batch))
	}
	return out
}

// outcome records every job's Done.
type outcome struct {
	mu   sync.Mutex
	done map[string]error
}

func (o *outcome) job(title string) Job {
	return Job{
		Build: func() (Message, bool) { return Message{Title: title}, true },
		Done: func(_ context.Context, _ MessageRef, err error) {
			o.mu.Lock()
			o.done[title] = err
			o.mu.Unlock()
		},
	}
}

func (o *outcome) get() map[string]error {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]error{}
	for k, v := range o.done {
		out[k] = v
	}
	return out
}

func TestBatchesAreBounded(t *testing.T) {
	b := &bulk{limits: BatchLimits{Size: 100, Wait: time.Hour}}
	q := NewQueue(b, "es", Channel{Name: "c"}, QueueOptions{PerSecond: 1000})
	o := &outcome{done: map[string]error{}}
	for i := range 250 {
		q.Enqueue(o.job(fmt.Sprint(i)))
	}
	runQueue(t, q)
	// 250 queued: two full batches go at once; the last 50 wait for Wait,
	// which is an hour here, unless more arrive: 50 more fill it.
	require.Eventually(t, func() bool { return len(b.sizes()) == 2 }, 10*time.Second, time.Millisecond)
	for i := 250; i < 300; i++ {
		q.Enqueue(o.job(fmt.Sprint(i)))
	}
	waitIdle(t, q)
	require.Equal(t, []int{100, 100, 100}, b.sizes())
	b.mu.Lock()
	var order []string
	for _, batch := range b.batches {
		order = append(order, batch...)
	}
	b.mu.Unlock()
	for i, title := range order {
		require.Equal(t, fmt.Sprint(i), title, "order is kept")
	}
	require.Len(t, o.get(), 300)
	for _, err := range o.get() {
		require.NoError(t, err)
	}
}

func TestBatchFlushesAfterWait(t *testing.T) {
	b := &bulk{limits: BatchLimits{Size: 100, Wait: 20 * time.Millisecond}}
	q := NewQueue(b, "es", Channel{Name: "c"}, QueueOptions{})
	o := &outcome{done: map[string]error{}}
	q.Enqueue(o.job("lone"))
	runQueue(t, q)
	waitIdle(t, q)
	require.Equal(t, []int{1}, b.sizes(), "a lone message goes once Wait has passed")
}

// TestBatchRetriesOnlyWhatWasRefused: a retryable refusal retries that
// message alone, a permanent one dead-letters it, the rest are done.
func TestBatchRetriesOnlyWhatWasRefused(t *testing.T) {
	b := &bulk{limits: BatchLimits{Size: 10, Wait: time.Hour}, fail: func(call int, m Message) error {
		switch {
		case m.Title == "busy" && call == 1:
			return RetryAfter(10*time.Millisecond, errors.New("429 es_rejected_execution_exception"))
		case m.Title == "bad":
			return Permanent(errors.New("400 mapper_parsing_exception"))
		}
		return nil
	}}
	q := NewQueue(b, "es", Channel{Name: "c"}, QueueOptions{Backoff: Backoff{Initial: time.Millisecond}})
	o := &outcome{done: map[string]error{}}
	for _, title := range []string{"ok", "busy", "bad", "ok2", "ok3", "ok4", "ok5", "ok6", "ok7", "ok8"} {
		q.Enqueue(o.job(title))
	}
	runQueue(t, q)
	waitIdle(t, q)
	require.Equal(t, []int{10, 1}, b.sizes(), "the retry carries only the refused message")
	got := o.get()
	require.Len(t, got, 10)
	require.NoError(t, got["busy"])
	require.ErrorContains(t, got["bad"], "mapper_parsing_exception")
	require.True(t, IsPermanent(got["bad"]))
}

// TestBatchKeepsAMessageThatWaitsForAnEarlierOne: a job whose Build has
// nothing to send until an earlier job of its batch is delivered (the
// resolution of an alert) is built again after it, not skipped.
func TestBatchKeepsAMessageThatWaitsForAnEarlierOne(t *testing.T) {
	b := &bulk{limits: BatchLimits{Size: 9, Wait: time.Hour}}
	q := NewQueue(b, "es", Channel{Name: "c"}, QueueOptions{})
	var opened atomic.Bool
	o := &outcome{done: map[string]error{}}
	open := o.job("failing")
	done := open.Done
	open.Done = func(ctx context.Context, ref MessageRef, err error) { opened.Store(err == nil); done(ctx, ref, err) }
	resolve := o.job("resolved")
	resolve.Build = func() (Message, bool) { return Message{Title: "resolved"}, opened.Load() }
	q.Enqueue(open)
	q.Enqueue(resolve)
	for i := range 8 {
		q.Enqueue(o.job(fmt.Sprint(i)))
	}
	runQueue(t, q)
	waitIdle(t, q)
	require.Equal(t, []int{1, 9}, b.sizes())
	require.NoError(t, o.get()["resolved"])
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Equal(t, "resolved", b.batches[1][0])
}
