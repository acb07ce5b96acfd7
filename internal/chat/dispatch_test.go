package chat

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDispatcherEditsTheReplyIntoEachUpdate: a reply with Updates is
// posted once, then edited into each later version, in order, until the
// sender closes them; a reply without Updates is posted once.
func TestDispatcherEditsTheReplyIntoEachUpdate(t *testing.T) {
	// Each version is sent once the one before it was posted, so that
	// none is skipped for a newer one.
	posted := make(chan struct{}, 3)
	n := &flaky{fail: func(int, Message) error { posted <- struct{}{}; return nil }}
	updates := make(chan Message)
	h := HandlerFunc(func(_ context.Context, in Inbound) Message {
		if in.Text == "plain" {
			return Message{Title: "plain"}
		}
		go func() {
			defer close(updates)
			for _, title := range []string{"running", "succeeded"} {
				<-posted
				updates <- Message{Title: title}
			}
		}()
		return Message{Title: "requested", Updates: updates}
	})
	d := NewDispatcher(n, h, 1, nil)
	d.Dispatch(t.Context(), Inbound{Channel: Channel{ID: "c"}, Text: "sync", Thread: MessageRef{ID: "T"}})
	d.Wait()
	d.Dispatch(t.Context(), Inbound{Channel: Channel{ID: "c"}, Text: "plain"})
	d.Wait()

	require.Len(t, n.posted, 4)
	require.Equal(t, "requested", n.posted[0].Title)
	require.Nil(t, n.posted[0].Replace)
	require.Nil(t, n.posted[0].Updates, "the channel is the dispatcher's, not the platform's")
	for i, title := range []string{"running", "succeeded"} {
		m := n.posted[i+1]
		require.Equal(t, title, m.Title)
		require.Equal(t, "1", m.Replace.ID, "an edit of the posted reply")
		require.Equal(t, "T", m.Thread.ID)
	}
	require.Equal(t, "plain", n.posted[3].Title)
}
