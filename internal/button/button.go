// Package button issues the opaque ids behind chat buttons and selects. A
// button carries only its id; what it does is kept here, server side. Each
// id is an HMAC over what the button does, its parameters, the channel it was posted
// to, its expiry and a nonce, so a click cannot be forged, moved to another
// channel, or used after it expires; one-shot buttons work once. The caller
// re-authorises the click, as if the user had typed it.
//
// With a Shared store (the agent's buttons ConfigMap) and a signing key
// that every replica has, a button works on any replica and after any
// restart until it expires, and a one-shot button is claimed with a
// compare-and-swap on the ConfigMap, so it works once across replicas.
package button

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultTTL is how long a button works.
const DefaultTTL = 24 * time.Hour

// Errors a click can get; each is worth telling the user.
var (
	ErrInvalid = errors.New("this button is not valid (it was altered or is not ours)")
	ErrExpired = errors.New("this button has expired; run the command again")
	ErrUsed    = errors.New("this button was already used; use the newest one, or type the command")
	ErrUnknown = errors.New("this button is from before the agent restarted; run the command again")
	ErrChannel = errors.New("this button belongs to another channel")
	// ErrForeign: the id was issued by another agent (another cluster's
	// kubechat sharing the channel). That agent answers it; this one stays silent.
	ErrForeign = errors.New("this button was issued by another agent")
)

// Spec is what a button does.
type Spec struct {
	// Kind names what the button does ("run", "confirm", ...).
	Kind string
	// Params are its parameters, such as the command text to run.
	Params map[string]string
	// Platform and Channel are where the button was posted; a click elsewhere is refused.
	Platform string
	Channel  string
	// OneShot buttons work once.
	OneShot bool
	// TTL is how long the id works; zero means the store's TTL.
	TTL time.Duration
}

// Shared keeps buttons where every replica sees them: Set saves an entry;
// Update claims one, writing only if nobody changed it in between. The
// state package's Store is one.
type Shared interface {
	Set(ctx context.Context, key, value string) error
	Update(ctx context.Context, key string, f func(old string, ok bool) (string, error)) error
	Prune(ctx context.Context, drop func(key, value string) bool) error
}

// Store issues and redeems button ids. It is safe for concurrent use.
type Store struct {
	// shared, when set, holds the buttons instead of the memory map.
	shared    Shared
	lastPrune time.Time

	// issuer is the tag that prefixes every id ("<tag>.<id>"), so an agent
	// of another cluster that sees the click can tell it is not its own.
	issuer string
	key    []byte
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	specs map[string]entry // by nonce
}

type entry struct {
	spec    Spec
	expires time.Time
	used    bool
}

// saved is an entry as the shared store keeps it.
type saved struct {
	Kind     string            `json:"k"`
	Params   map[string]string `json:"p,omitempty"`
	Platform string            `json:"pl"`
	Channel  string            `json:"c"`
	OneShot  bool              `json:"o,omitempty"`
	Expires  int64             `json:"e"`
	Used     bool              `json:"u,omitempty"`
}

// pruneEvery is how often Put drops expired entries from the shared store.
const pruneEvery = time.Minute

// keyPrefix names the shared store's entries.
const keyPrefix = "button."

// UseShared makes the store keep its buttons in shared (see Shared).
func (s *Store) UseShared(shared Shared) { s.shared = shared }

// NewStore returns a store that signs with key (random when nil) and whose ids live for ttl.
func NewStore(key []byte, ttl time.Duration) (*Store, error) {
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("button key: %w", err)
		}
	}
	if len(key) < 16 {
		return nil, errors.New("button key: need at least 16 bytes")
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Store{key: key, ttl: ttl, now: time.Now, specs: map[string]entry{}}, nil
}

const nonceLen = 16

// SetIssuer makes the store prefix its ids with the tag of issuer (a
// cluster name; see Tag) and take only ids that carry it. Call it before
// the first Put. Setting the issuer it has changes nothing, so the command
// handlers a config reload builds over one store may each set it while
// the store is in use.
func (s *Store) SetIssuer(issuer string) {
	if t := Tag(issuer); t != s.issuer {
		s.issuer = t
	}
}

// Tag is the short prefix that the ids of issuer carry: 8 hex digits of its
// hash, so ids stay within every platform's limit (Discord's custom_id is
// at most 100 characters) whatever the cluster name's length.
func Tag(issuer string) string {
	if issuer == "" {
		return ""
	}
	h := sha256.Sum256([]byte(issuer))
	return hex.EncodeToString(h[:4])
}

// Foreign reports whether id names another issuer. An id without one is
// not foreign: Take judges it (not valid, or from before a restart).
func (s *Store) Foreign(id string) bool {
	issuer, _, ok := strings.Cut(id, ".")
	return ok && issuer != s.issuer
}

// Put stores a and returns its id.
func (s *Store) Put(ctx context.Context, a Spec) (string, error) {
	nonce := make([]byte, nonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("button nonce: %w", err)
	}
	ttl := s.ttl
	if a.TTL > 0 {
		ttl = a.TTL
	}
	exp := s.now().Add(ttl).Truncate(time.Second)
	if s.shared != nil {
		b, err := json.Marshal(saved{Kind: a.Kind, Params: a.Params, Platform: a.Platform, Channel: a.Channel, OneShot: a.OneShot, Expires: exp.Unix()})
		if err != nil {
			return "", err
		}
		s.prune(ctx)
		if err := s.shared.Set(ctx, keyPrefix+hex.EncodeToString(nonce), string(b)); err != nil {
			return "", fmt.Errorf("save button: %w", err)
		}
	} else {
		s.mu.Lock()
		s.gc()
		s.specs[string(nonce)] = entry{spec: a, expires: exp}
		s.mu.Unlock()
	}
	raw := make([]byte, 0, nonceLen+8+sha256.Size)
	raw = append(raw, nonce...)
	raw = binary.BigEndian.AppendUint64(raw, uint64(exp.Unix()))
	raw = append(raw, s.mac(nonce, exp, a)...)
	id := base64.RawURLEncoding.EncodeToString(raw)
	if s.issuer != "" {
		id = s.issuer + "." + id
	}
	return id, nil
}

// Take redeems id clicked in platform/channel. It checks the signature, the
// expiry, the channel and, for one-shot buttons, that it was not used.
func (s *Store) Take(ctx context.Context, id, platform, channel string) (Spec, error) {
	if s.Foreign(id) {
		return Spec{}, ErrForeign
	}
	if s.issuer != "" {
		id = strings.TrimPrefix(id, s.issuer+".")
	}
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) != nonceLen+8+sha256.Size {
		return Spec{}, ErrInvalid
	}
	nonce, expUnix, sig := raw[:nonceLen], binary.BigEndian.Uint64(raw[nonceLen:nonceLen+8]), raw[nonceLen+8:]
	exp := time.Unix(int64(expUnix), 0)
	if s.shared != nil {
		return s.takeShared(ctx, nonce, exp, sig, platform, channel)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.specs[string(nonce)]
	if err := s.check(e, ok, nonce, exp, sig, platform, channel); err != nil {
		if errors.Is(err, ErrExpired) {
			delete(s.specs, string(nonce))
		}
		return Spec{}, err
	}
	if e.spec.OneShot {
		e.used = true
		s.specs[string(nonce)] = e
	}
	a := e.spec
	a.Params = maps.Clone(a.Params)
	return a, nil
}

// takeShared claims the entry in the shared store: the check and the
// "used" mark are one compare-and-swap, so a one-shot button works once
// whichever replica gets its clicks.
func (s *Store) takeShared(ctx context.Context, nonce []byte, exp time.Time, sig []byte, platform, channel string) (Spec, error) {
	var claimed Spec
	var refused error
	err := s.shared.Update(ctx, keyPrefix+hex.EncodeToString(nonce), func(old string, ok bool) (string, error) {
		var e entry
		if ok {
			var v saved
			if json.Unmarshal([]byte(old), &v) != nil {
				return "", ErrInvalid
			}
			e = entry{spec: Spec{Kind: v.Kind, Params: v.Params, Platform: v.Platform, Channel: v.Channel, OneShot: v.OneShot},
				expires: time.Unix(v.Expires, 0), used: v.Used}
		}
		if err := s.check(e, ok, nonce, exp, sig, platform, channel); err != nil {
			refused = err
			return "", err
		}
		claimed = e.spec
		if !e.spec.OneShot {
			return old, nil
		}
		b, err := json.Marshal(saved{Kind: e.spec.Kind, Params: e.spec.Params, Platform: e.spec.Platform,
			Channel: e.spec.Channel, OneShot: true, Expires: e.expires.Unix(), Used: true})
		return string(b), err
	})
	switch {
	case refused != nil:
		return Spec{}, refused
	case err != nil:
		return Spec{}, fmt.Errorf("claim button: %w", err)
	}
	return claimed, nil
}

// check judges a click on the entry e (ok: it exists) of nonce.
func (s *Store) check(e entry, ok bool, nonce []byte, exp time.Time, sig []byte, platform, channel string) error {
	switch {
	case !ok && s.now().After(exp):
		return ErrExpired
	case !ok:
		return ErrUnknown
	case !e.expires.Equal(exp) || !hmac.Equal(sig, s.mac(nonce, exp, e.spec)):
		return ErrInvalid
	case s.now().After(exp):
		return ErrExpired
	case e.spec.Platform != platform || e.spec.Channel != channel:
		return ErrChannel
	case e.spec.OneShot && e.used:
		return ErrUsed
	}
	return nil
}

// prune drops expired entries from the shared store, at most every pruneEvery.
func (s *Store) prune(ctx context.Context) {
	s.mu.Lock()
	due := s.now().Sub(s.lastPrune) > pruneEvery
	if due {
		s.lastPrune = s.now()
	}
	s.mu.Unlock()
	if !due {
		return
	}
	now := s.now().Unix()
	_ = s.shared.Prune(ctx, func(key, value string) bool {
		var v saved
		return strings.HasPrefix(key, keyPrefix) && (json.Unmarshal([]byte(value), &v) != nil || v.Expires < now)
	})
}

// mac signs everything a click depends on. Params are signed in key order.
func (s *Store) mac(nonce []byte, exp time.Time, a Spec) []byte {
	h := hmac.New(sha256.New, s.key)
	write := func(v string) {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(v))))
		h.Write([]byte(v))
	}
	write(s.issuer)
	h.Write(nonce)
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(exp.Unix())))
	write(a.Kind)
	write(a.Platform)
	write(a.Channel)
	for _, k := range slices.Sorted(maps.Keys(a.Params)) {
		write(k)
		write(a.Params[k])
	}
	if a.OneShot {
		write("oneshot")
	}
	return h.Sum(nil)
}

// gc drops expired buttons; used one-shot ones stay until expiry so that a
// replay is told "already used". Call with mu held.
func (s *Store) gc() {
	now := s.now()
	for k, e := range s.specs {
		if now.After(e.expires) {
			delete(s.specs, k)
		}
	}
}
