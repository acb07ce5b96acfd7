package hub

import (
	"context"
	"encoding/base64"
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kubechat/kubechat/internal/chat"
)

// state is the hub's chat.StateStore: what a platform keeps across
// restarts (Teams' conversation references) lives in the JetStream
// bucket fleet.StateBucket, where every hub replica finds it, as an
// agent keeps it in its state ConfigMap. Until Run connected, nothing is
// stored and nothing is found.
type state struct {
	kv atomic.Pointer[jetstream.KeyValue]
}

var _ chat.StateStore = (*state)(nil)

// stateTimeout bounds one read or write of the bucket.
const stateTimeout = 10 * time.Second

// stateKey makes a platform's key (any text) a valid bucket key.
func stateKey(key string) string {
	return "s." + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// Get reads key.
func (s *state) Get(key string) (string, bool) {
	kv := s.kv.Load()
	if kv == nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	e, err := (*kv).Get(ctx, stateKey(key))
	if err != nil {
		return "", false
	}
	return string(e.Value()), true
}

// Set writes key, or deletes it when value is empty.
func (s *state) Set(ctx context.Context, key, value string) error {
	kv := s.kv.Load()
	if kv == nil {
		return errors.New("the hub is not connected to NATS yet")
	}
	ctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	if value == "" {
		err := (*kv).Delete(ctx, stateKey(key))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		return err
	}
	_, err := (*kv).Put(ctx, stateKey(key), []byte(value))
	return err
}
