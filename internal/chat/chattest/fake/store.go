package fake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrUnknownChannel is the error of a fake's test-side call about a channel
// it does not have.
var ErrUnknownChannel = errors.New("unknown channel")

// Store is what every fake chat platform keeps, whatever its wire format:
// its channels, the messages posted to them with their edits and threads,
// the files uploaded to them, and the faults injected into its API. Tests
// wait on it for messages and edits; the fake notifies the embedded Signal
// of changes of its own state too, so that one Signal wakes every wait.
// X is the platform's own part of a message: its blocks, embeds, props or
// attachments. Create a Store with NewStore. A Store is safe for
// concurrent use; what it returns is a copy, except the X of messages.
type Store[X any] struct {
	Faults // injected into the platform's API calls
	Signal // notified of every change; Close closes it

	mu       sync.Mutex
	channels []*Channel    // in the order they were added
	messages []*Message[X] // in posting order
	byID     map[string]*Message[X]
	files    []File // in upload order
}

// Channel is one conversation of a fake platform: a channel, a direct
// message channel with one user, or a thread that the platform keeps as a
// channel of its own, as Discord does.
type Channel struct {
	// ID is the channel's id, in the platform's format.
	ID string
	// Name is the channel's name; "" for a direct message channel.
	Name string
	// User is the other party of a direct message channel; "" otherwise.
	User string
	// Parent is, for a thread kept as a channel, the channel it was started in.
	Parent string
	// Created is when the channel was added.
	Created time.Time
}

// Message is one message as a fake platform holds it, edits applied.
type Message[X any] struct {
	// ID is the message's id, in the platform's format.
	ID string
	// Channel is the id of the channel the message is in.
	Channel string
	// Thread is the id of the thread the message is in: its root message's
	// (which for a thread kept as a channel is also the channel's), or ""
	// for a top-level message.
	Thread string
	// Author is the id of the user or bot who posted it.
	Author string
	// Text is the message's text.
	Text string
	// Files are the ids of the files attached to it, in order.
	Files []string
	// Edits counts the updates of the message.
	Edits int
	// Created is when it was posted; Edited when it was last updated, or zero.
	Created, Edited time.Time
	// X is the platform's own part of the message. The Store hands it out
	// as it is: a fake replaces what X refers to rather than changing it.
	X X
}

// File is one uploaded file.
type File struct {
	// ID is the file's id, in the platform's format.
	ID string
	// Name is the file name the client gave; Title the title, if any.
	Name, Title string
	// ContentType is the media type the client gave or the fake detected.
	ContentType string
	// Content is what was uploaded.
	Content string
	// Channel is the channel the file was uploaded or shared to; Thread
	// the thread it was shared into, if any.
	Channel, Thread string
	// Message is the message the file is attached to, "" while it is attached to none.
	Message string
	// Text is the text that came with the file, if any.
	Text string
	// Author is who uploaded it.
	Author string
	// Created is when it was uploaded.
	Created time.Time
}

// NewStore returns an empty store.
func NewStore[X any]() *Store[X] {
	return &Store[X]{byID: make(map[string]*Message[X])}
}

// AddChannel adds a channel, stamping Created if it is zero, and returns it.
func (s *Store[X]) AddChannel(ch Channel) Channel {
	if ch.Created.IsZero() {
		ch.Created = time.Now()
	}
	s.mu.Lock()
	s.channels = append(s.channels, &ch)
	s.mu.Unlock()
	s.Notify()
	return ch
}

// EnsureChannel returns the id of the channel with the name, ignoring a
// leading '#', and adds a channel with the id newID returns when there is
// none; newID is told how many channels there are, and runs with the store
// locked: it must not call the store. An empty name adds nothing and
// returns "".
func (s *Store[X]) EnsureChannel(name string, newID func(channels int) string) string {
	name = strings.TrimPrefix(name, "#")
	if name == "" {
		return ""
	}
	s.mu.Lock()
	for _, ch := range s.channels {
		if ch.Name == name && ch.Parent == "" {
			s.mu.Unlock()
			return ch.ID
		}
	}
	ch := &Channel{ID: newID(len(s.channels)), Name: name, Created: time.Now()}
	s.channels = append(s.channels, ch)
	s.mu.Unlock()
	s.Notify()
	return ch.ID
}

// Channel returns the channel with the id.
func (s *Store[X]) Channel(id string) (Channel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.channels {
		if ch.ID == id {
			return *ch, true
		}
	}
	return Channel{}, false
}

// ChannelNamed returns the channel with the name, ignoring a leading '#';
// threads kept as channels are not looked at.
func (s *Store[X]) ChannelNamed(name string) (Channel, bool) {
	name = strings.TrimPrefix(name, "#")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.channels {
		if name != "" && ch.Name == name && ch.Parent == "" {
			return *ch, true
		}
	}
	return Channel{}, false
}

// ChannelID returns the id of the named channel (a leading '#' is
// ignored), or "" if there is none.
func (s *Store[X]) ChannelID(name string) string {
	ch, _ := s.ChannelNamed(name)
	return ch.ID
}

// Channels returns the channels in the order they were added.
func (s *Store[X]) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Channel, len(s.channels))
	for i, ch := range s.channels {
		out[i] = *ch
	}
	return out
}

// DirectChannel returns the direct message channel with the user, adding
// the one newChannel returns the first time. newChannel runs with the
// store locked: it must not call the store.
func (s *Store[X]) DirectChannel(user string, newChannel func() Channel) Channel {
	s.mu.Lock()
	for _, ch := range s.channels {
		if ch.User == user {
			s.mu.Unlock()
			return *ch
		}
	}
	ch := newChannel()
	ch.User = user
	s.mu.Unlock()
	return s.AddChannel(ch)
}

// Post stores a new message, stamping Created if it is zero, and returns it.
func (s *Store[X]) Post(m Message[X]) Message[X] {
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	m.Files = slices.Clone(m.Files)
	s.mu.Lock()
	s.messages = append(s.messages, &m)
	s.byID[m.ID] = &m
	out := m.clone()
	s.mu.Unlock()
	s.Notify()
	return out
}

// Message returns the message with the id.
func (s *Store[X]) Message(id string) (Message[X], bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.byID[id]; m != nil {
		return m.clone(), true
	}
	return Message[X]{}, false
}

// Update replaces the message with m's id by m, counting one more edit and
// stamping Edited, and returns it; it reports false, changing nothing, if
// there is no such message.
func (s *Store[X]) Update(m Message[X]) (Message[X], bool) {
	s.mu.Lock()
	stored := s.byID[m.ID]
	if stored == nil {
		s.mu.Unlock()
		return Message[X]{}, false
	}
	m.Files = slices.Clone(m.Files)
	m.Edits, m.Edited = stored.Edits+1, time.Now()
	*stored = m
	out := stored.clone()
	s.mu.Unlock()
	s.Notify()
	return out, true
}

// Messages returns, in posting order, the messages of a channel and those
// of the threads kept as channels that were started in it.
func (s *Store[X]) Messages(channel string) []Message[X] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messagesLocked(channel)
}

// messagesLocked is Messages. s.mu must be held.
func (s *Store[X]) messagesLocked(channel string) []Message[X] {
	in := map[string]bool{channel: true}
	for _, ch := range s.channels {
		if ch.Parent == channel {
			in[ch.ID] = true
		}
	}
	var out []Message[X]
	for _, m := range s.messages {
		if in[m.Channel] {
			out = append(out, m.clone())
		}
	}
	return out
}

// WaitMessages waits until Messages(channel) holds at least n messages and
// returns them. When ctx ends, or the store is closed, first it returns
// the messages so far with an error.
func (s *Store[X]) WaitMessages(ctx context.Context, channel string, n int) ([]Message[X], error) {
	var msgs []Message[X]
	err := s.Wait(ctx, &s.mu, func() bool {
		msgs = s.messagesLocked(channel)
		return len(msgs) >= n
	})
	if err != nil {
		return msgs, fmt.Errorf("wait for %d messages in %s (have %d): %w", n, channel, len(msgs), err)
	}
	return msgs, nil
}

// WaitEdit waits until the message with the id has had at least n edits
// and returns it. When ctx ends, or the store is closed, first it returns
// the message as it is, if there is one, with an error.
func (s *Store[X]) WaitEdit(ctx context.Context, id string, n int) (Message[X], error) {
	var m Message[X]
	err := s.Wait(ctx, &s.mu, func() bool {
		stored := s.byID[id]
		if stored != nil {
			m = stored.clone()
		}
		return stored != nil && stored.Edits >= n
	})
	if err != nil {
		return m, fmt.Errorf("wait for edit %d of message %s (has %d): %w", n, id, m.Edits, err)
	}
	return m, nil
}

// AddFile stores an uploaded file, stamping Created if it is zero, and returns it.
func (s *Store[X]) AddFile(f File) File {
	if f.Created.IsZero() {
		f.Created = time.Now()
	}
	s.mu.Lock()
	s.files = append(s.files, f)
	s.mu.Unlock()
	s.Notify()
	return f
}

// File returns the first file with the id.
func (s *Store[X]) File(id string) (File, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		if f.ID == id {
			return f, true
		}
	}
	return File{}, false
}

// Files returns the files in upload order.
func (s *Store[X]) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.files)
}

// AttachFiles marks the files with the ids as attached to the message.
func (s *Store[X]) AttachFiles(message string, ids []string) {
	s.mu.Lock()
	for i := range s.files {
		if slices.Contains(ids, s.files[i].ID) {
			s.files[i].Message = message
		}
	}
	s.mu.Unlock()
	s.Notify()
}

// clone copies a message, its Files included.
func (m *Message[X]) clone() Message[X] {
	out := *m
	out.Files = slices.Clone(m.Files)
	return out
}

// Convert maps each of what the store returns through f, for a fake that
// hands out its messages or files in a type of its own; none give nil.
func Convert[T, U any](in []T, f func(T) U) []U {
	var out []U
	for _, v := range in {
		out = append(out, f(v))
	}
	return out
}
