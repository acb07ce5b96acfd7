package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/exepages"
)

func TestPagesAreReleasedOnceReady(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	notReady := errors.New("not ready: source/pods")

	// Stopped before it was ready: nothing is released.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	releaseStartPages(ctx, func() error { return notReady }, log)
	require.ErrorContains(t, exepages.Released(os.Getpid()), "not released")

	var asked atomic.Int32
	releaseStartPages(t.Context(), func() error {
		if asked.Add(1) < 3 {
			return notReady
		}
		return nil
	}, log)
	require.Equal(t, int32(3), asked.Load(), "released when ready, not before")
	require.NoError(t, exepages.Released(os.Getpid()))
}
