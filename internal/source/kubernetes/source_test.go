package kubernetes

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/testenv"
)

// emitted collects what a running source emits.
type emitted struct {
	mu  sync.Mutex
	got []event.Event
}

func (e *emitted) events() []event.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got)
}
func (e *emitted) reset() { e.mu.Lock(); e.got = nil; e.mu.Unlock() }

// startSource runs a source for cfg against the test control plane until
// the test ends, and returns it once its caches have synced.
func startSource(t *testing.T, cfg config.Source, opts Options) (*Source, *emitted) {
	t.Helper()
	testenv.Skip(t, env)
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	opts.Metadata, err = metadata.NewForConfig(env.Config)
	require.NoError(t, err)
	synced := make(chan struct{})
	opts.OnSynced = func() { close(synced) }
	src, err := New(cfg, "dev", dyn, slog.New(slog.DiscardHandler), opts)
	require.NoError(t, err)
	out := &emitted{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		done <- src.Start(ctx, func(_ context.Context, ev event.Event) { out.mu.Lock(); out.got = append(out.got, ev); out.mu.Unlock() })
	}()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	<-synced
	return src, out
}
