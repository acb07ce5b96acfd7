package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime/debug"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/exepages"
)

// TestSettledOnceReady: the collector is settled and the binary's pages
// released once ready, not before, and not at all when stopped first.
func TestSettledOnceReady(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	notReady := errors.New("not ready: source/pods")
	var settled atomic.Int32
	settleGC := func() { settled.Add(1) }

	// Stopped before it was ready: nothing is released.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	settleAfterStart(ctx, func() error { return notReady }, settleGC, log)
	require.ErrorContains(t, exepages.Released(os.Getpid()), "not released")
	require.Zero(t, settled.Load())

	var asked atomic.Int32
	settleAfterStart(t.Context(), func() error {
		if asked.Add(1) < 3 {
			return notReady
		}
		return nil
	}, settleGC, log)
	require.Equal(t, int32(3), asked.Load(), "released when ready, not before")
	require.Equal(t, int32(1), settled.Load(), "the collector settled once")
	require.NoError(t, exepages.Released(os.Getpid()))
}

func TestStartGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	settle := startGC(func(string) (string, bool) { return "", false })
	require.Equal(t, startGCPercent, debug.SetGCPercent(startGCPercent), "without GOGC, during the start")
	settle()
	require.Equal(t, steadyGCPercent, debug.SetGCPercent(100), "without GOGC, once settled")

	settle = startGC(func(k string) (string, bool) { return "200", k == "GOGC" })
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: the runtime read it, no default applies")
	settle()
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: settling changes nothing")
}
