package chat

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type scripted struct {
	errs  []error
	calls int
	times []time.Time
}

func (s *scripted) Post(context.Context, Channel, Message) (MessageRef, error) {
	s.calls++
	s.times = append(s.times, time.Now())
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return MessageRef{}, err
	}
	return MessageRef{ID: "ok"}, nil
}

func TestDeliverRetriesThenSucceeds(t *testing.T) {
	n := &scripted{errs: []error{errors.New("503"), errors.New("connection reset")}}
	ref, attempts, err := deliver(t.Context(), n, Channel{}, Message{}, Backoff{Initial: time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, "ok", ref.ID)
	require.Equal(t, 3, attempts)
}

func TestDeliverHonoursRetryAfter(t *testing.T) {
	n := &scripted{errs: []error{RetryAfter(150*time.Millisecond, errors.New("429"))}}
	_, _, err := deliver(t.Context(), n, Channel{}, Message{}, Backoff{Initial: time.Millisecond})
	require.NoError(t, err)
	require.GreaterOrEqual(t, n.times[1].Sub(n.times[0]), 150*time.Millisecond)
}

func TestDeliverStopsOnPermanent(t *testing.T) {
	n := &scripted{errs: []error{Permanent(errors.New("404 channel_not_found"))}}
	_, attempts, err := deliver(t.Context(), n, Channel{}, Message{}, Backoff{Initial: time.Millisecond})
	require.True(t, IsPermanent(err))
	require.Equal(t, 1, attempts)
}

func TestDeliverGivesUpAtDeadline(t *testing.T) {
	errs := make([]error, 1000)
	for i := range errs {
		errs[i] = errors.New("503")
	}
	n := &scripted{errs: errs}
	_, _, err := deliver(t.Context(), n, Channel{}, Message{}, Backoff{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, Deadline: 100 * time.Millisecond})
	require.ErrorContains(t, err, "gave up after")
	require.ErrorContains(t, err, "503")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n = &scripted{errs: []error{errors.New("503")}}
	_, _, err = deliver(ctx, n, Channel{}, Message{}, Backoff{Initial: time.Second})
	require.ErrorIs(t, err, context.Canceled)
}

// deliver posts m through Retry, as the queue does.
func deliver(ctx context.Context, n Notifier, to Channel, m Message, b Backoff) (MessageRef, int, error) {
	b = b.withDefaults()
	var ref MessageRef
	attempts, err := Retry(ctx, b, time.Now().Add(b.Deadline), func(ctx context.Context) error {
		var err error
		ref, err = n.Post(ctx, to, m)
		return err
	})
	return ref, attempts, err
}
