// Package health tracks whether the agent's long-running components are
// healthy and ready, for /healthz and /readyz. A component reports its own
// state; /healthz fails only once a component has stayed unhealthy for longer
// than the grace period, so a short reconnect does not get the pod killed.
package health

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Tracker holds the state of every component. The zero value is not usable; call New.
type Tracker struct {
	grace time.Duration
	now   func() time.Time

	mu         sync.Mutex
	components map[string]*state
}

type state struct {
	healthy   bool
	ready     bool
	reason    string
	unhealthy time.Time // when it last became unhealthy
}

// New returns a Tracker whose Healthy fails after a component has been
// unhealthy for longer than grace.
func New(grace time.Duration) *Tracker {
	return &Tracker{grace: grace, now: time.Now, components: map[string]*state{}}
}

// Register adds a component that starts healthy and not ready.
func (t *Tracker) Register(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.components[name]; !ok {
		t.components[name] = &state{healthy: true}
	}
}

// SetReady marks a component ready (for example: caches synced, connected once).
func (t *Tracker) SetReady(name string, ready bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.get(name).ready = ready
}

// SetHealthy records a component's health; reason says why when it is not.
// A nil Tracker records nothing, so that parts built without one (tests,
// offline checks) need no guard.
func (t *Tracker) SetHealthy(name string, healthy bool, reason string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.get(name)
	if !healthy && s.healthy {
		s.unhealthy = t.now()
	}
	s.healthy, s.reason = healthy, reason
}

func (t *Tracker) get(name string) *state {
	s, ok := t.components[name]
	if !ok {
		s = &state{healthy: true}
		t.components[name] = s
	}
	return s
}

// Healthy returns nil, or an error naming each component that has been
// unhealthy for longer than the grace period.
func (t *Tracker) Healthy() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var bad []string
	for _, name := range slices.Sorted(maps.Keys(t.components)) {
		s := t.components[name]
		if d := t.now().Sub(s.unhealthy); !s.healthy && d > t.grace {
			bad = append(bad, fmt.Sprintf("%s: unhealthy for %s: %s", name, d.Round(time.Second), s.reason))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}

// Ready returns nil once every registered component is ready, or an error naming those that are not.
func (t *Tracker) Ready() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var waiting []string
	for _, name := range slices.Sorted(maps.Keys(t.components)) {
		if !t.components[name].ready {
			waiting = append(waiting, name)
		}
	}
	if len(waiting) > 0 {
		return fmt.Errorf("not ready: %s", strings.Join(waiting, ", "))
	}
	return nil
}
