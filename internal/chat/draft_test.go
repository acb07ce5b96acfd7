package chat

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pacedNotifier records every post with its time, and paces edits.
type pacedNotifier struct {
	every time.Duration
	mu    sync.Mutex
	posts []posted
}

type posted struct {
	at time.Time
	m  Message
}

func (n *pacedNotifier) EditInterval() time.Duration { return n.every }

func (n *pacedNotifier) Post(_ context.Context, to Channel, m Message) (MessageRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.posts = append(n.posts, posted{time.Now(), m})
	if m.Replace != nil {
		return *m.Replace, nil
	}
	return MessageRef{Channel: to.ID, ID: fmt.Sprintf("M%d", len(n.posts))}, nil
}

// streamer shows its reply word by word, then returns it whole.
type streamer struct{ words int }

func (s streamer) Handle(ctx context.Context, in Inbound) Message { return s.HandleDraft(ctx, in, nil) }

func (s streamer) HandleDraft(_ context.Context, _ Inbound, d Draft) Message {
	var text []string
	for i := range s.words {
		text = append(text, fmt.Sprint("w", i))
		if d != nil {
			d.Show(Message{Title: "answer", Sections: []Section{{Text: strings.Join(text, " ")}}})
		}
	}
	return Message{Title: "answer", Sections: []Section{{Text: strings.Join(text, " ") + "."}}}
}

// TestDraftEditsRespectTheRateLimit: a reply shown as it grows is posted
// once and then edited, never faster than the platform's edit interval,
// shows in between folded into the latest; the final reply is the last
// edit of the same message.
func TestDraftEditsRespectTheRateLimit(t *testing.T) {
	n := &pacedNotifier{every: 40 * time.Millisecond}
	d := NewDispatcher(n, streamer{words: 200}, 1, nil)
	d.Dispatch(t.Context(), Inbound{Platform: "p", Channel: Channel{Name: "c", ID: "C1"}, Thread: MessageRef{Channel: "C1", ID: "Q1"}})
	d.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	require.GreaterOrEqual(t, len(n.posts), 2, "a draft, then the final reply")
	require.Less(t, len(n.posts), 200, "shows faster than the limit are folded")
	first := n.posts[0]
	require.Nil(t, first.m.Replace, "the first draft is a new reply")
	require.Equal(t, "Q1", first.m.Thread.ID, "in the question's thread")
	for i, p := range n.posts[1:] {
		require.NotNil(t, p.m.Replace, "post %d edits the draft", i+1)
		require.Equal(t, "M1", p.m.Replace.ID)
		// The limiter never lets two edits closer than the interval (a
		// lower bound, which a slow machine only widens).
		require.GreaterOrEqual(t, p.at.Sub(n.posts[i].at), n.every-2*time.Millisecond, "edit %d came too soon", i+1)
	}
	last := n.posts[len(n.posts)-1].m
	require.True(t, strings.HasSuffix(last.Sections[0].Text, "w199."), "the final reply is the last edit")
}

// TestNoDraftNoEdit: a handler that shows nothing is answered with one post.
func TestNoDraftNoEdit(t *testing.T) {
	n := &pacedNotifier{every: time.Hour}
	d := NewDispatcher(n, streamer{words: 0}, 1, nil)
	d.Dispatch(t.Context(), Inbound{Platform: "p", Channel: Channel{Name: "c", ID: "C1"}, Thread: MessageRef{Channel: "C1", ID: "Q1"}})
	d.Wait()
	require.Len(t, n.posts, 1)
	require.Nil(t, n.posts[0].m.Replace)
}
