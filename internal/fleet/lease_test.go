package fleet_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/fleet"
)

// leaseLog records, in order, when each hub started and stopped leading.
type leaseLog struct {
	mu     sync.Mutex
	events []string
	active map[string]bool
	// overlap is set if two hubs ever led at once.
	overlap bool
}

func (l *leaseLog) lead(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		l.mu.Lock()
		for other, on := range l.active {
			if on && other != name {
				l.overlap = true
			}
		}
		l.active[name] = true
		l.events = append(l.events, name+" leads")
		l.mu.Unlock()
		<-ctx.Done()
		l.mu.Lock()
		l.active[name] = false
		l.events = append(l.events, name+" stops")
		l.mu.Unlock()
		return ctx.Err()
	}
}

func (l *leaseLog) leading(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active[name]
}

// runLease runs identity's lease on its own connection to url.
type runLease struct {
	nc   *nats.Conn
	stop context.CancelFunc
	done chan error
}

func startLease(t *testing.T, url, identity string, d time.Duration, log *leaseLog, standing chan<- string) *runLease {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := slog.New(&standbyHandler{identity: identity, standing: standing})
	l, err := fleet.NewLease(ctx, js, identity, d, 1, h)
	require.NoError(t, err)
	r := &runLease{nc: nc, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- l.Run(ctx, log.lead(identity)) }()
	return r
}

// standbyHandler tells standing when its hub found the lease taken: the
// barrier after which "it does not lead" is a fact, not a guess.
type standbyHandler struct {
	slog.Handler
	identity string
	standing chan<- string
}

func (h *standbyHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *standbyHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "standing by: another hub leads" && h.standing != nil {
		h.standing <- h.identity
	}
	return nil
}
func (h *standbyHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *standbyHandler) WithGroup(string) slog.Handler      { return h }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOneHubLeads: of two hubs one leads and the other stands by; a clean
// stop hands the lease over, and a leader cut off from NATS steps down
// before the other takes over. Two never lead at once.
func TestOneHubLeads(t *testing.T) {
	srv, err := fleet.Embedded(config.EmbeddedNATS{Listen: "127.0.0.1:0", StoreDir: filepath.Join(t.TempDir(), "js")})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	const d = 6 * time.Second // generous: a loaded machine must not miss a renewal
	log := &leaseLog{active: map[string]bool{}}
	standing := make(chan string, 16)

	a := startLease(t, srv.ClientURL(), "a", d, log, standing)
	waitUntil(t, "a leads", func() bool { return log.leading("a") })
	b := startLease(t, srv.ClientURL(), "b", d, log, standing)
	require.Equal(t, "b", <-standing, "b found the lease taken")
	require.False(t, log.leading("b"))

	// A clean stop gives the lease up: b leads (without waiting for the
	// lease to expire, which this test does not time).
	a.stop()
	require.NoError(t, <-a.done)
	waitUntil(t, "b leads", func() bool { return log.leading("b") })

	// c stands by; then b loses NATS: it must stop leading on its own,
	// and c must lead only after that.
	c := startLease(t, srv.ClientURL(), "c", d, log, standing)
	require.Equal(t, "c", <-standing)
	b.nc.Close()
	require.ErrorIs(t, <-b.done, fleet.ErrLeaseLost)
	waitUntil(t, "c leads", func() bool { return log.leading("c") })
	c.stop()
	require.NoError(t, <-c.done)

	log.mu.Lock()
	defer log.mu.Unlock()
	require.False(t, log.overlap, "two hubs led at once: %v", log.events)
	require.Equal(t, []string{"a leads", "a stops", "b leads", "b stops", "c leads", "c stops"}, log.events)
}

func TestLeaseDurationChecked(t *testing.T) {
	_, err := fleet.NewLease(context.Background(), nil, "a", time.Second, 1, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "lease duration 1s: must be at least 3s")
}
