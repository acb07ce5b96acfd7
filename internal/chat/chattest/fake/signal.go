package fake

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrClosed is the error of a Wait on a closed Signal, and of anything
// else a fake refuses because it has been closed.
var ErrClosed = errors.New("server closed")

// Signal lets a fake's waiters know that its state changed: the fake calls
// Notify after every change, and a waiter blocks in Wait until a condition
// on that state holds. The zero value is ready. A Signal is safe for
// concurrent use.
type Signal struct {
	mu      sync.Mutex
	changed chan struct{} // closed by the next Notify; nil until someone waits
	closed  bool
}

// Notify wakes every Wait in progress to check its condition again.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// Close wakes every Wait in progress; from then on a Wait whose condition
// does not hold returns ErrClosed. It reports whether the Signal was open:
// closing again does nothing.
func (s *Signal) Close() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closed = true
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return true
}

// Closed reports whether Close was called.
func (s *Signal) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Wait blocks until cond, which runs with lock held, reports true, ctx ends
// or the Signal is closed; it returns nil, ctx.Err() or ErrClosed. The
// condition is checked first: once it holds, Wait returns nil even on a
// closed Signal. For no wake-up to be lost, the state cond reads must be
// changed before Notify is called.
func (s *Signal) Wait(ctx context.Context, lock sync.Locker, cond func() bool) error {
	for {
		lock.Lock()
		ok := cond()
		changed, closed := s.watch()
		lock.Unlock()
		switch {
		case ok:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// watch returns the channel the next Notify closes and whether the Signal is closed.
func (s *Signal) watch() (<-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed, s.closed
}

// Wrap returns err with what failed said before it, as fmt.Errorf's %w
// does, or nil if err is nil: a fake's test-side call returns what it has
// either way.
func Wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
