package chat

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

type retryAfterError struct {
	after time.Duration
	err   error
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err as a rate limit (429) to be retried no sooner than d.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{after: d, err: err}
}

// RetryAfterOf returns the delay a RetryAfter error asks for.
func RetryAfterOf(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// Backoff configures Retrying.
type Backoff struct {
	// Initial is the first delay (default 500 ms); each retry doubles it up to Max (default 30 s).
	Initial time.Duration
	Max     time.Duration
	// Deadline bounds the whole delivery, retries included (default 10 min).
	Deadline time.Duration
	// OnAttempt, if set, is told the outcome of every attempt (nil: it
	// went through), so that an outage shows while it lasts.
	OnAttempt func(error)
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 500 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Deadline <= 0 {
		b.Deadline = 10 * time.Minute
	}
	return b
}

// PostTimeout bounds one delivery attempt.
const PostTimeout = 15 * time.Second

// Retry runs attempt, each call bounded by PostTimeout, until it succeeds,
// fails permanently, would retry past deadline, or ctx ends. Waits grow
// exponentially from b.Initial to b.Max with up to 50 % jitter; a
// RetryAfter error sets the wait instead.
func Retry(ctx context.Context, b Backoff, deadline time.Time, attempt func(context.Context) error) (int, error) {
	b = b.withDefaults()
	delay := b.Initial
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, PostTimeout)
		err := attempt(actx)
		cancel()
		if b.OnAttempt != nil && ctx.Err() == nil {
			b.OnAttempt(err)
		}
		if err == nil {
			return n, nil
		}
		if IsPermanent(err) {
			return n, err
		}
		wait := delay + rand.N(delay/2+1) // jitter: up to +50 %
		if after, ok := RetryAfterOf(err); ok {
			wait = max(after, time.Millisecond)
		} else {
			delay = min(2*delay, b.Max)
		}
		if time.Now().Add(wait).After(deadline) {
			return n, fmt.Errorf("gave up after %d attempts (deadline %s): %w", n, b.Deadline, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return n, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
