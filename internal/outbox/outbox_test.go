package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Nodes: 1}) }

func newStore(t *testing.T, ns string) *Store {
	t.Helper()
	s := New(env.Client, ns, "kubechat-outbox", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, s.Load(t.Context()))
	return s
}

func entry(key string) Entry {
	return Entry{Key: key, Channel: "ops/alerts", Source: "pods", Kind: "event", Body: json.RawMessage(`{"k":"` + key + `"}`)}
}

func keys(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Key)
	}
	return out
}

// TestPendingAndDeliveredSurviveARestart: what was queued and not
// delivered comes back, in order; what was delivered is not queued again,
// neither by the old process nor by the next one.
func TestPendingAndDeliveredSurviveARestart(t *testing.T) {
	testenv.Skip(t, env)
	const ns = "outbox-restart"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	s := newStore(t, ns)
	require.True(t, s.Checkpoint("pods").IsZero(), "a missing ConfigMap is an empty outbox")
	s.Hold("pods")
	s.Release("pods")
	for _, k := range []string{"a", "b", "c"} {
		require.True(t, s.Add(entry(k)))
	}
	require.False(t, s.Add(entry("b")), "a pending key is queued once")
	s.Done("b")
	require.False(t, s.Add(entry("b")), "a delivered key is not queued again")
	before := time.Now()
	require.NoError(t, s.Flush(t.Context(), false))

	next := newStore(t, ns)
	require.Equal(t, []string{"a", "c"}, keys(next.Pending()))
	require.JSONEq(t, `{"k":"c"}`, string(next.Pending()[1].Body))
	require.False(t, next.Add(entry("b")), "the next process remembers the delivered key")
	require.False(t, next.Add(entry("a")), "nor queues a pending one twice")
	require.True(t, next.Add(entry("d")))
	cp := next.Checkpoint("pods")
	require.False(t, cp.IsZero())
	require.True(t, next.Checkpoint("events").IsZero(), "a source new to the config replays nothing")
	require.True(t, cp.Before(before), "the checkpoint lies before the write, by its margin")
	require.WithinDuration(t, before, cp, checkpointMargin+5*time.Second)
}

// TestHeldCheckpointDoesNotMove: while a source replays from its
// checkpoint, writes keep it; after Release it moves on. Each source has
// its own: one still replaying holds back no other.
func TestHeldCheckpointDoesNotMove(t *testing.T) {
	testenv.Skip(t, env)
	const ns = "outbox-hold"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	s := newStore(t, ns)
	for _, src := range []string{"pods", "events"} {
		s.Hold(src)
		s.Release(src)
	}
	require.True(t, s.Add(entry("a")))
	require.NoError(t, s.Flush(t.Context(), true))
	first := s.Checkpoint("pods")
	require.True(t, s.Checkpoint("events").Equal(first))

	s = newStore(t, ns)
	s.Hold("pods")
	s.Hold("events")
	time.Sleep(20 * time.Millisecond) // time must pass for a later checkpoint to differ
	s.Release("events")
	s.Done("a")
	require.NoError(t, s.Flush(t.Context(), true))
	saved := newStore(t, ns)
	require.True(t, saved.Checkpoint("pods").Equal(first), "held: the saved checkpoint stays")
	require.True(t, saved.Checkpoint("events").After(first), "another source's moves on")
	s.Release("pods")
	require.NoError(t, s.Flush(t.Context(), false))
	require.True(t, newStore(t, ns).Checkpoint("pods").After(first), "released: it moves on")
}

// TestLegacyCheckpointCountsForEverySource: an outbox written before
// per-source checkpoints gives its one checkpoint to every source.
func TestLegacyCheckpointCountsForEverySource(t *testing.T) {
	testenv.Skip(t, env)
	const ns = "outbox-legacy"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	old := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	_, err := env.Client.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kubechat-outbox"},
		Data:       map[string]string{dataKey: `{"checkpoint":"2026-12-01T10:00:00Z","pending":[]}`},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	s := newStore(t, ns)
	require.True(t, s.Checkpoint("pods").Equal(old))
	require.True(t, s.Checkpoint("anything").Equal(old))
}

// TestFullOutboxHoldsTheCheckpointBack: entries past MaxBytes are not
// saved, are counted, and keep the checkpoint before the time they were
// queued, so that a crash replays them from the sources.
func TestFullOutboxHoldsTheCheckpointBack(t *testing.T) {
	testenv.Skip(t, env)
	const ns = "outbox-full"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	s := newStore(t, ns)
	s.Hold("pods")
	s.Release("pods")
	big := strings.Repeat("x", 100<<10)
	old := time.Now().Add(-time.Hour)
	for i := range 10 {
		e := entry(fmt.Sprintf("e%d", i))
		e.Body = json.RawMessage(`"` + big + `"`)
		if i == 9 {
			e.Queued = old // the newest entry, by an old event replayed late
		}
		require.True(t, s.Add(e))
	}
	require.NoError(t, s.Flush(t.Context(), true))
	require.Equal(t, 3.0, testutil.ToFloat64(s.unsaved), "7 entries fit in 768 KiB, 3 do not")
	require.NoError(t, s.Flush(t.Context(), true))
	require.Equal(t, 3.0, testutil.ToFloat64(s.unsaved), "an entry is counted once, however often it is not saved")

	next := newStore(t, ns)
	require.Len(t, next.Pending(), 7)
	require.Equal(t, "e0", next.Pending()[0].Key, "the oldest are kept")
	require.WithinDuration(t, old.Add(-checkpointMargin), next.Checkpoint("pods"), time.Second,
		"the checkpoint stays before the oldest unsaved entry")
}

// TestUnreadableOutboxIsNotOverwritten: an outbox that cannot be decoded
// stops the load rather than being replaced by an empty one.
func TestUnreadableOutboxIsNotOverwritten(t *testing.T) {
	testenv.Skip(t, env)
	const ns = "outbox-bad"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	_, err := env.Client.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kubechat-outbox"}, Data: map[string]string{dataKey: "{not json"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	s := New(env.Client, ns, "kubechat-outbox", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.ErrorContains(t, s.Load(t.Context()), "load outbox outbox-bad/kubechat-outbox")
}

// TestDeliveryIsWrittenSoon: Run writes a delivered key without waiting
// for the ticker, so that a crash soon after a delivery does not repeat it.
func TestDeliveryIsWrittenSoon(t *testing.T) {
	testenv.Skip(t, env)
	const ns = "outbox-soon"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	s := newStore(t, ns)
	s.interval = time.Hour // only a delivery wakes the writer
	require.True(t, s.Add(entry("a")))
	require.NoError(t, s.Flush(t.Context(), false))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	s.Done("a")
	require.Eventually(t, func() bool {
		next := New(env.Client, ns, "kubechat-outbox", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		return next.Load(ctx) == nil && len(next.Pending()) == 0 && !next.Add(entry("a"))
	}, 30*time.Second, 5*time.Millisecond, "the delivery is written long before the hourly tick")
}

// TestNilStoreKeepsNothing: an agent without a cluster queues everything
// and remembers nothing.
func TestNilStoreKeepsNothing(t *testing.T) {
	var s *Store
	require.NoError(t, s.Load(t.Context()))
	require.True(t, s.Add(entry("a")))
	require.True(t, s.Add(entry("a")))
	s.Done("a")
	s.Hold("pods")
	s.Release("pods")
	require.Empty(t, s.Pending())
	require.True(t, s.Checkpoint("pods").IsZero())
	require.NoError(t, s.Flush(t.Context(), true))
}

// TestBacklogDrainsInOrder: a large backlog delivered in any order leaves
// the rest pending in the order queued, and a delivered key is not
// queued again.
func TestBacklogDrainsInOrder(t *testing.T) {
	s := New(nil, "", "", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	const n = 10000
	for i := range n {
		require.True(t, s.Add(entry(fmt.Sprintf("e%d", i))))
	}
	for i := 0; i < n; i += 2 {
		s.Done(fmt.Sprintf("e%d", i))
	}
	for i := n - 1; i >= n/2; i -= 2 {
		s.Done(fmt.Sprintf("e%d", i))
	}
	var want []string
	for i := 1; i < n/2; i += 2 {
		want = append(want, fmt.Sprintf("e%d", i))
	}
	var got []string
	for _, e := range s.Pending() {
		got = append(got, e.Key)
	}
	require.Equal(t, want, got)
	require.Equal(t, float64(len(want)), testutil.ToFloat64(s.depth))
	require.False(t, s.Add(entry("e0")), "delivered: not queued again")
	require.False(t, s.Add(entry("e1")), "pending: not queued twice")
	for _, k := range want {
		s.Done(k)
	}
	require.Empty(t, s.Pending())
	require.Zero(t, testutil.ToFloat64(s.depth))
	require.NoError(t, s.Flush(t.Context(), true))
}
