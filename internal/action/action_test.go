package action

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	s, err := NewStore(nil, time.Hour)
	require.NoError(t, err)
	id, err := s.Put(Action{Kind: "run", Params: map[string]string{"command": "kubectl get pods"}, Platform: "slack", Channel: "C1"})
	require.NoError(t, err)
	for range 2 {
		a, err := s.Take(id, "slack", "C1")
		require.NoError(t, err, "a run-again button works more than once")
		require.Equal(t, "kubectl get pods", a.Params["command"])
	}
	_, err = s.Take(id, "slack", "C2")
	require.ErrorIs(t, err, ErrChannel)
}

func TestOneShotIsSingleUse(t *testing.T) {
	s, err := NewStore(nil, time.Hour)
	require.NoError(t, err)
	id, err := s.Put(Action{Kind: "approve", Params: map[string]string{"pr": "7"}, Platform: "p", Channel: "c", OneShot: true})
	require.NoError(t, err)
	_, err = s.Take(id, "p", "c")
	require.NoError(t, err)
	_, err = s.Take(id, "p", "c")
	require.ErrorIs(t, err, ErrUsed, "a replayed one-shot click is refused")
}

func TestExpiryAndTampering(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s, err := NewStore([]byte("0123456789abcdef0123456789abcdef"), time.Minute)
	require.NoError(t, err)
	s.now = func() time.Time { return now }
	id, err := s.Put(Action{Kind: "run", Params: map[string]string{"command": "x"}, Platform: "p", Channel: "c"})
	require.NoError(t, err)

	raw, _ := base64.RawURLEncoding.DecodeString(id)
	raw[len(raw)-1] ^= 1
	_, err = s.Take(base64.RawURLEncoding.EncodeToString(raw), "p", "c")
	require.ErrorIs(t, err, ErrInvalid, "a flipped signature bit")
	raw[len(raw)-1] ^= 1
	raw[nonceLen+7]++ // a later expiry
	_, err = s.Take(base64.RawURLEncoding.EncodeToString(raw), "p", "c")
	require.ErrorIs(t, err, ErrInvalid, "an extended expiry")
	_, err = s.Take("not-base64!", "p", "c")
	require.ErrorIs(t, err, ErrInvalid)

	now = now.Add(2 * time.Minute)
	_, err = s.Take(id, "p", "c")
	require.ErrorIs(t, err, ErrExpired)

	other, err := NewStore(nil, time.Minute)
	require.NoError(t, err)
	_, err = other.Take(id, "p", "c")
	require.ErrorIs(t, err, ErrExpired, "unknown to this store and past its expiry")
	now = time.Unix(1_000_000, 0)
	other.now = s.now
	_, err = other.Take(id, "p", "c")
	require.ErrorIs(t, err, ErrUnknown, "issued by another process")

	_, err = NewStore([]byte("short"), time.Minute)
	require.EqualError(t, err, "action key: need at least 16 bytes")
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
	id, err := prod.Put(Action{Kind: "run", Platform: "p", Channel: "c"})
	require.NoError(t, err)
	require.LessOrEqual(t, len(id), 100, "fits Discord's custom_id")
	require.False(t, prod.Foreign(id))
	require.True(t, dev.Foreign(id))
	_, err = dev.Take(id, "p", "c")
	require.ErrorIs(t, err, ErrForeign)
	_, err = prod.Take(id, "p", "c")
	require.NoError(t, err)
	require.False(t, prod.Foreign("no-tag-at-all"), "an id without a tag is judged by Take")
	_, err = prod.Take("no-tag-at-all", "p", "c")
	require.ErrorIs(t, err, ErrInvalid)
}
