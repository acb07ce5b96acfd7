package commands

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
)

// slots bounds the commands that run at once: total in the agent, and
// perChannel from one channel. Commands that find no free slot wait in
// one line, in arrival order; a freed slot goes to the first waiter whose
// channel is under its bound, so one busy channel does not hold up the
// others.
type slots struct {
	total, perChannel int
	wait              time.Duration

	mu        sync.Mutex
	running   int
	byChannel map[string]int
	line      []*waiter
}

type waiter struct {
	channel string
	granted chan struct{}
}

// newSlots applies c's bounds (the defaults where c has none: a config
// built in code rather than loaded).
func newSlots(c config.Commands) *slots {
	s := &slots{total: c.MaxConcurrent, perChannel: c.MaxConcurrentPerChannel, wait: c.QueueTimeout.D(), byChannel: map[string]int{}}
	if s.total <= 0 {
		s.total = config.DefaultMaxConcurrentCommands
	}
	if s.perChannel <= 0 {
		s.perChannel = min(config.DefaultMaxConcurrentCommandsPerChannel, s.total)
	}
	if s.wait <= 0 {
		s.wait = config.DefaultCommandQueueTimeout
	}
	return s
}

// errBusy is a command that waited QueueTimeout for a slot.
type errBusy struct {
	waited time.Duration
}

func (e errBusy) Error() string {
	return fmt.Sprintf("kubechat is busy: the command waited %s for one of the slots commands run in, and did not run; try again later", e.waited)
}

// acquire takes a slot for a command of channel. When none is free it
// calls queued with the command's place in line (1: next), once, and
// waits until a slot is free, ctx ends or the queue timeout passes. The
// returned release frees the slot.
func (s *slots) acquire(ctx context.Context, channel string, queued func(position int)) (release func(), err error) {
	w := &waiter{channel: channel, granted: make(chan struct{})}
	s.mu.Lock()
	s.line = append(s.line, w)
	s.grant()
	position := slices.Index(s.line, w) + 1
	s.mu.Unlock()
	release = func() { s.release(channel) }
	if position == 0 {
		return release, nil
	}
	if queued != nil {
		queued(position)
	}
	timer := time.NewTimer(s.wait)
	defer timer.Stop()
	select {
	case <-w.granted:
		return release, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = errBusy{waited: s.wait}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-w.granted: // granted as it gave up: hand the slot on
		s.free(channel)
	default:
		if i := slices.Index(s.line, w); i >= 0 {
			s.line = slices.Delete(s.line, i, i+1)
		}
		s.grant()
	}
	return nil, err
}

func (s *slots) release(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free(channel)
}

// free returns channel's slot and hands it on. s.mu is held.
func (s *slots) free(channel string) {
	s.running--
	s.byChannel[channel]--
	if s.byChannel[channel] == 0 {
		delete(s.byChannel, channel)
	}
	s.grant()
}

// grant hands free slots to waiters in line order. s.mu is held.
func (s *slots) grant() {
	for i := 0; i < len(s.line) && s.running < s.total; {
		w := s.line[i]
		if s.byChannel[w.channel] >= s.perChannel {
			i++
			continue
		}
		s.running++
		s.byChannel[w.channel]++
		close(w.granted)
		s.line = slices.Delete(s.line, i, i+1)
	}
}

// queuedMessage is the reply shown while a command waits for a slot; the
// command's result replaces it.
func queuedMessage(title string, position int) chat.Message {
	return chat.Message{Title: title, Level: chat.LevelInfo, Sections: []chat.Section{{
		Text: fmt.Sprintf("Busy, queued (position %d): other commands are running; this one runs as soon as a slot frees, and its result replaces this message.", position),
	}}}
}
