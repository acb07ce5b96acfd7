package fake

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStoreChannels(t *testing.T) {
	s := NewStore[string]()
	alerts := s.AddChannel(Channel{ID: "C1", Name: "alerts"})
	require.False(t, alerts.Created.IsZero(), "Created is stamped")
	s.AddChannel(Channel{ID: "T1", Name: "alerts", Parent: "C1"})
	require.Equal(t, "C1", s.ChannelID("#alerts"), "a thread kept as a channel is no named channel")
	require.Empty(t, s.ChannelID("nope"))
	require.Empty(t, s.ChannelID(""))
	got, ok := s.Channel("T1")
	require.True(t, ok)
	require.Equal(t, "C1", got.Parent)
	_, ok = s.Channel("C404")
	require.False(t, ok)

	made := 0
	newDM := func() Channel { made++; return Channel{ID: "D1"} }
	dm := s.DirectChannel("U1", newDM)
	require.Equal(t, Channel{ID: "D1", User: "U1", Created: dm.Created}, dm)
	require.Equal(t, dm, s.DirectChannel("U1", newDM))
	require.Equal(t, 1, made, "a direct message channel is made once")
	var ids []string
	for _, ch := range s.Channels() {
		ids = append(ids, ch.ID)
	}
	require.Equal(t, []string{"C1", "T1", "D1"}, ids)
}

func TestStoreMessages(t *testing.T) {
	s := NewStore[string]()
	s.AddChannel(Channel{ID: "C1", Name: "alerts"})
	s.AddChannel(Channel{ID: "T1", Parent: "C1"})
	root := s.Post(Message[string]{ID: "1", Channel: "C1", Author: "bot", Text: "root", Files: []string{"F1"}, X: "blocks"})
	require.False(t, root.Created.IsZero())
	s.Post(Message[string]{ID: "2", Channel: "C1", Thread: "1", Text: "reply"})
	s.Post(Message[string]{ID: "3", Channel: "T1", Thread: "T1", Text: "in a thread channel"})
	s.Post(Message[string]{ID: "4", Channel: "C2", Text: "elsewhere"})

	var texts []string
	for _, m := range s.Messages("C1") {
		texts = append(texts, m.Text)
	}
	require.Equal(t, []string{"root", "reply", "in a thread channel"}, texts)
	require.Len(t, s.Messages("T1"), 1)

	got, ok := s.Message("1")
	require.True(t, ok)
	got.Files[0] = "changed"
	again, _ := s.Message("1")
	require.Equal(t, []string{"F1"}, again.Files, "what the store returns is a copy")

	again.Text, again.X = "edited", "new blocks"
	edited, ok := s.Update(again)
	require.True(t, ok)
	require.Equal(t, 1, edited.Edits)
	require.False(t, edited.Edited.IsZero())
	again.Edits = 7
	edited, _ = s.Update(again)
	require.Equal(t, 2, edited.Edits, "the store counts the edits")
	require.Equal(t, "new blocks", edited.X)
	_, ok = s.Update(Message[string]{ID: "404"})
	require.False(t, ok)
	_, ok = s.Message("404")
	require.False(t, ok)
}

func TestStoreWaits(t *testing.T) {
	s := NewStore[string]()
	go func() {
		for _, id := range []string{"1", "2"} {
			s.Post(Message[string]{ID: id, Channel: "C1"})
		}
		m, _ := s.Message("1")
		s.Update(m)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msgs, err := s.WaitMessages(ctx, "C1", 2)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	m, err := s.WaitEdit(ctx, "1", 1)
	require.NoError(t, err)
	require.Equal(t, 1, m.Edits)

	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	msgs, err = s.WaitMessages(short, "C1", 3)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, msgs, 2, "a failed wait returns what there is")
	m, err = s.WaitEdit(short, "1", 2)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, 1, m.Edits)

	waited := make(chan error, 1)
	go func() {
		_, err := s.WaitMessages(context.Background(), "C1", 3)
		waited <- err
	}()
	require.True(t, s.Close())
	require.False(t, s.Close(), "closing again does nothing")
	require.True(t, s.Closed())
	require.ErrorIs(t, <-waited, ErrClosed)
	_, err = s.WaitEdit(context.Background(), "404", 1)
	require.ErrorIs(t, err, ErrClosed)
}

func TestStoreFiles(t *testing.T) {
	s := NewStore[string]()
	first := s.AddFile(File{ID: "F1", Name: "a.log", Content: "a", Channel: "C1"})
	require.False(t, first.Created.IsZero())
	s.AddFile(File{ID: "F2", Name: "b.log", Channel: "C1"})
	s.AttachFiles("M1", []string{"F2", "F404"})
	f, ok := s.File("F2")
	require.True(t, ok)
	require.Equal(t, "M1", f.Message)
	_, ok = s.File("F404")
	require.False(t, ok)
	files := s.Files()
	require.Len(t, files, 2)
	require.Equal(t, "a", files[0].Content)
	require.Empty(t, files[0].Message)
}

func TestStoreEnsureChannel(t *testing.T) {
	s := NewStore[string]()
	newID := func(n int) string { return fmt.Sprintf("C%d", n) }
	require.Equal(t, "C0", s.EnsureChannel("#alerts", newID))
	require.Equal(t, "C0", s.EnsureChannel("alerts", newID), "a name that exists returns its channel")
	require.Equal(t, "C1", s.EnsureChannel("deploys", newID))
	require.Empty(t, s.EnsureChannel("", newID))
	require.Empty(t, s.EnsureChannel("#", newID))
	require.Len(t, s.Channels(), 2)
}
