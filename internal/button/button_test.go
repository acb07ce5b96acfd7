package button

import (
	"context"
	"encoding/base64"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	s, err := NewStore(nil, time.Hour)
	require.NoError(t, err)
	id, err := s.Put(t.Context(), Spec{Kind: "run", Params: map[string]string{"command": "kubectl get pods"}, Platform: "slack", Channel: "C1"})
	require.NoError(t, err)
	for range 2 {
		a, err := s.Take(t.Context(), id, "slack", "C1")
		require.NoError(t, err, "a run-again button works more than once")
		require.Equal(t, "kubectl get pods", a.Params["command"])
	}
	_, err = s.Take(t.Context(), id, "slack", "C2")
	require.ErrorIs(t, err, ErrChannel)
}

func TestOneShotIsSingleUse(t *testing.T) {
	s, err := NewStore(nil, time.Hour)
	require.NoError(t, err)
	id, err := s.Put(t.Context(), Spec{Kind: "approve", Params: map[string]string{"pr": "7"}, Platform: "p", Channel: "c", OneShot: true})
	require.NoError(t, err)
	_, err = s.Take(t.Context(), id, "p", "c")
	require.NoError(t, err)
	_, err = s.Take(t.Context(), id, "p", "c")
	require.ErrorIs(t, err, ErrUsed, "a replayed one-shot click is refused")
}

func TestExpiryAndTampering(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s, err := NewStore([]byte("0123456789abcdef0123456789abcdef"), time.Minute)
	require.NoError(t, err)
	s.now = func() time.Time { return now }
	id, err := s.Put(t.Context(), Spec{Kind: "run", Params: map[string]string{"command": "x"}, Platform: "p", Channel: "c"})
	require.NoError(t, err)

	raw, _ := base64.RawURLEncoding.DecodeString(id)
	raw[len(raw)-1] ^= 1
	_, err = s.Take(t.Context(), base64.RawURLEncoding.EncodeToString(raw), "p", "c")
	require.ErrorIs(t, err, ErrInvalid, "a flipped signature bit")
	raw[len(raw)-1] ^= 1
	raw[nonceLen+7]++ // a later expiry
	_, err = s.Take(t.Context(), base64.RawURLEncoding.EncodeToString(raw), "p", "c")
	require.ErrorIs(t, err, ErrInvalid, "an extended expiry")
	_, err = s.Take(t.Context(), "not-base64!", "p", "c")
	require.ErrorIs(t, err, ErrInvalid)

	now = now.Add(2 * time.Minute)
	_, err = s.Take(t.Context(), id, "p", "c")
	require.ErrorIs(t, err, ErrExpired)

	other, err := NewStore(nil, time.Minute)
	require.NoError(t, err)
	_, err = other.Take(t.Context(), id, "p", "c")
	require.ErrorIs(t, err, ErrExpired, "unknown to this store and past its expiry")
	now = time.Unix(1_000_000, 0)
	other.now = s.now
	_, err = other.Take(t.Context(), id, "p", "c")
	require.ErrorIs(t, err, ErrUnknown, "issued by another process")

	_, err = NewStore([]byte("short"), time.Minute)
	require.EqualError(t, err, "button key: need at least 16 bytes")
}

// TestIssuer: ids carry their agent's tag; another agent's store calls them
// foreign and takes none.
func TestIssuer(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	prod, err := NewStore(key, time.Hour)
	require.NoError(t, err)
	prod.SetIssuer("prod-eu-1-with-a-rather-long-cluster-name-that-is-still-a-dns-label")
	dev, err := NewStore(key, time.Hour)
	require.NoError(t, err)
	dev.SetIssuer("dev")
	id, err := prod.Put(t.Context(), Spec{Kind: "run", Platform: "p", Channel: "c"})
	require.NoError(t, err)
	require.LessOrEqual(t, len(id), 100, "fits Discord's custom_id")
	require.False(t, prod.Foreign(id))
	require.True(t, dev.Foreign(id))
	_, err = dev.Take(t.Context(), id, "p", "c")
	require.ErrorIs(t, err, ErrForeign)
	_, err = prod.Take(t.Context(), id, "p", "c")
	require.NoError(t, err)
	require.False(t, prod.Foreign("no-tag-at-all"), "an id without a tag is judged by Take")
	_, err = prod.Take(t.Context(), "no-tag-at-all", "p", "c")
	require.ErrorIs(t, err, ErrInvalid)
}

// sharedMap is a Shared in memory with the compare-and-swap of a ConfigMap.
type sharedMap struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *sharedMap) Set(_ context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = value
	return nil
}

func (s *sharedMap) Update(_ context.Context, key string, f func(string, bool) (string, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[key]
	v, err := f(old, ok)
	if err == nil {
		s.m[key] = v
	}
	return err
}

func (s *sharedMap) Prune(_ context.Context, drop func(string, string) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if drop(k, v) {
			delete(s.m, k)
		}
	}
	return nil
}

// TestSharedButtonsWorkOnAnyReplicaOnce: with a shared store and key, a
// button issued by one replica works on the other and after a restart,
// and a one-shot button works once, even clicked on both at once.
func TestSharedButtonsWorkOnAnyReplicaOnce(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	shared := &sharedMap{m: map[string]string{}}
	replica := func() *Store {
		s, err := NewStore(key, time.Hour)
		require.NoError(t, err)
		s.SetIssuer("prod")
		s.UseShared(shared)
		return s
	}
	a, b := replica(), replica()
	id, err := a.Put(t.Context(), Spec{Kind: "run", Params: map[string]string{"command": "x"}, Platform: "p", Channel: "c", OneShot: true})
	require.NoError(t, err)
	got, err := b.Take(t.Context(), id, "p", "c")
	require.NoError(t, err, "issued by one replica, clicked on the other")
	require.Equal(t, "x", got.Params["command"])
	_, err = a.Take(t.Context(), id, "p", "c")
	require.ErrorIs(t, err, ErrUsed)
	_, err = replica().Take(t.Context(), id, "p", "c")
	require.ErrorIs(t, err, ErrUsed, "and after a restart")

	id, err = a.Put(t.Context(), Spec{Kind: "run", Platform: "p", Channel: "c", OneShot: true})
	require.NoError(t, err)
	restarted := replica()
	_, err = restarted.Take(t.Context(), id, "p", "c")
	require.NoError(t, err, "a button from before a restart works")

	id, err = a.Put(t.Context(), Spec{Kind: "run", Platform: "p", Channel: "c", OneShot: true})
	require.NoError(t, err)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b, a, b} {
		wg.Go(func() {
			if _, err := s.Take(t.Context(), id, "p", "c"); err == nil {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, wins.Load(), "one click wins")

	forged := id[:len(id)-2] + "AA"
	_, err = b.Take(t.Context(), forged, "p", "c")
	require.ErrorIs(t, err, ErrInvalid)
	other, err := NewStore([]byte("another-key-another-key-another!"), time.Hour)
	require.NoError(t, err)
	other.SetIssuer("prod")
	other.UseShared(shared)
	id, err = a.Put(t.Context(), Spec{Kind: "run", Platform: "p", Channel: "c"})
	require.NoError(t, err)
	_, err = other.Take(t.Context(), id, "p", "c")
	require.ErrorIs(t, err, ErrInvalid, "a replica with another key cannot honour it")
}
