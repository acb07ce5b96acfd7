// Package health tracks the agent's parts for /healthz, /readyz and
// /metrics, with one meaning each:
//
//   - Liveness (/healthz) is about the process alone: it fails only when a
//     loop that must keep turning (registered with Loop) has not beaten for
//     its allowed gap. A chat service or the API server being down never
//     fails it, so an outage does not restart the pod and drop its queue.
//   - Readiness (/readyz) says whether the agent can do its work now: every
//     registered part is ready (caches synced, listening), and none has been
//     unhealthy (a chat connection down, deliveries failing, a watch
//     broken) for longer than the grace period, so that a reconnect does
//     not flap it.
//   - Metrics: kubechat_platform_up{platform}, kubechat_source_synced{source}
//     and kubechat_component_up{component}, from the same states.
package health

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Tracker holds the state of every component. The zero value is not usable; call New.
type Tracker struct {
	grace time.Duration
	now   func() time.Time

	mu         sync.Mutex
	components map[string]*state
	loops      map[string]*loop
}

type state struct {
	healthy   bool
	ready     bool
	reason    string
	unhealthy time.Time // when it last became unhealthy
}

type loop struct {
	gap  time.Duration
	last time.Time
}

// New returns a Tracker whose readiness fails after a component has been
// unhealthy for longer than grace.
func New(grace time.Duration) *Tracker {
	return &Tracker{grace: grace, now: time.Now, components: map[string]*state{}, loops: map[string]*loop{}}
}

// Register adds a component that starts healthy and not ready.
func (t *Tracker) Register(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.components[name]; !ok {
		t.components[name] = &state{healthy: true}
	}
}

// Unregister takes a component off, so that a part the agent no longer
// runs (a config reload removed it) is neither waited for nor reported.
func (t *Tracker) Unregister(name string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.components, name)
}

// SetReady marks a component ready (for example: caches synced, connected once).
func (t *Tracker) SetReady(name string, ready bool) {
	if t == nil {
		return
	}
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

// Loop registers a loop of the process that must beat at least every gap
// while it runs; Beat records a turn, Done takes it off when it ends.
func (t *Tracker) Loop(name string, gap time.Duration) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.loops[name] = &loop{gap: gap, last: t.now()}
}

// Beat records that loop name turned.
func (t *Tracker) Beat(name string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.loops[name]; ok {
		l.last = t.now()
	}
}

// Done takes loop name off: it ended on purpose.
func (t *Tracker) Done(name string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.loops, name)
}

// get returns the state of name; a component that reports without being
// registered (a connection's health) counts as ready.
func (t *Tracker) get(name string) *state {
	s, ok := t.components[name]
	if !ok {
		s = &state{healthy: true, ready: true}
		t.components[name] = s
	}
	return s
}

// Healthy is liveness: nil, or an error naming each loop that has not
// turned within its gap.
func (t *Tracker) Healthy() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var bad []string
	for _, name := range slices.Sorted(maps.Keys(t.loops)) {
		l := t.loops[name]
		if d := t.now().Sub(l.last); d > l.gap {
			bad = append(bad, fmt.Sprintf("%s: stuck for %s", name, d.Round(time.Second)))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}

// Ready is readiness: nil once every registered component is ready and
// none has been unhealthy for longer than the grace period, else an error
// naming each that is not.
func (t *Tracker) Ready() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var waiting []string
	for _, name := range slices.Sorted(maps.Keys(t.components)) {
		s := t.components[name]
		switch d := t.now().Sub(s.unhealthy); {
		case !s.ready:
			waiting = append(waiting, name)
		case !s.healthy && d > t.grace:
			waiting = append(waiting, fmt.Sprintf("%s (unhealthy for %s: %s)", name, d.Round(time.Second), s.reason))
		}
	}
	if len(waiting) > 0 {
		return fmt.Errorf("not ready: %s", strings.Join(waiting, ", "))
	}
	return nil
}

// up reports whether component name is ready and healthy now.
func (t *Tracker) up(name string) bool {
	s, ok := t.components[name]
	return ok && s.ready && s.healthy
}

var (
	platformUp  = prometheus.NewDesc("kubechat_platform_up", "1 while a chat platform's connection (if it has one) is up and its deliveries go through.", []string{"platform"}, nil)
	sourceSync  = prometheus.NewDesc("kubechat_source_synced", "1 while a source's watches are synced and running.", []string{"source"}, nil)
	componentUp = prometheus.NewDesc("kubechat_component_up", "1 while a part of the agent is ready and healthy.", []string{"component"}, nil)
)

// Describe implements prometheus.Collector.
func (t *Tracker) Describe(ch chan<- *prometheus.Desc) {
	ch <- platformUp
	ch <- sourceSync
	ch <- componentUp
}

// Collect implements prometheus.Collector.
func (t *Tracker) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	gauge := func(ok bool) float64 {
		if ok {
			return 1
		}
		return 0
	}
	platforms := map[string]bool{}
	for name := range t.components {
		ch <- prometheus.MustNewConstMetric(componentUp, prometheus.GaugeValue, gauge(t.up(name)), name)
		kind, what, _ := strings.Cut(name, "/")
		switch kind {
		case "platform", "delivery":
			platforms[what] = true
		case "source":
			ch <- prometheus.MustNewConstMetric(sourceSync, prometheus.GaugeValue, gauge(t.up(name)), what)
		}
	}
	for p := range platforms {
		up := true
		for _, c := range []string{"platform/" + p, "delivery/" + p} {
			if s, ok := t.components[c]; ok && !s.healthy {
				up = false
			}
		}
		ch <- prometheus.MustNewConstMetric(platformUp, prometheus.GaugeValue, gauge(up), p)
	}
}
