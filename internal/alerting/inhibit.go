package alerting

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	amlabels "github.com/prometheus/alertmanager/pkg/labels"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

// Inhibition, modelled on Alertmanager's inhibit_rules: while an
// Alertmanager alert group fires that a rule's source matchers select, the
// events its target matchers select and that agree with the group on every
// equal label are not posted, in any channel (instead of being threaded
// under the alert). As with silences, an inhibited event is counted and
// recorded for explain, and a resolution is never inhibited, so a message
// posted before the alert fired is still edited when its workload
// recovers.
//
// The firing groups are learnt from the Alertmanager sources' events (a
// firing notification adds or refreshes its group, a resolved one removes
// it) and kept in the state ConfigMap, so a restart, a new leader or a
// config reload inhibits at once rather than after Alertmanager's next
// repeat. A group not notified again within forgetAfter is forgotten,
// which ends inhibition when its resolution never comes (send_resolved:
// false, or a resolution lost while no replica was leader).

// firingKey is the state entry that holds the firing Alertmanager groups.
const firingKey = "inhibit.firing"

// maxFiring bounds the firing groups kept, which share the state ConfigMap
// (1 MiB in all) with everything else; beyond it the least recently
// notified is forgotten.
const maxFiring = 200

// firingGroup is one firing Alertmanager alert group.
type firingGroup struct {
	Source string            `json:"source"`
	Labels map[string]string `json:"labels"`
	Since  time.Time         `json:"since"`
	Seen   time.Time         `json:"seen"`
}

// inhibitRule is a compiled config.InhibitRule.
type inhibitRule struct {
	name           string // its name, else its place in the config
	source, target amlabels.Matchers
	equal          []string
}

// inhibitor tracks the firing groups and applies the rules.
type inhibitor struct {
	rules  []inhibitRule
	forget time.Duration
	state  chat.StateStore
	log    *slog.Logger

	mu     sync.Mutex
	raw    string // the state value firing was read from
	firing map[string]firingGroup
	// saveMu orders writes; it is taken before mu is released.
	saveMu sync.Mutex
}

// newInhibitor compiles the rules of cfg.
func newInhibitor(cfg config.Inhibit, state chat.StateStore, log *slog.Logger) (*inhibitor, error) {
	in := &inhibitor{forget: time.Duration(cfg.ForgetAfter), state: state, log: log}
	if in.forget <= 0 {
		in.forget = config.DefaultInhibitForgetAfter
	}
	for i, r := range cfg.Rules {
		path := fmt.Sprintf("inhibit.rules[%d]", i)
		ir := inhibitRule{name: cmp.Or(r.Name, path), equal: r.Equal}
		var err error
		if ir.source, err = compileMatchers(r.SourceMatchers); err != nil {
			return nil, fmt.Errorf("alerting: %s.sourceMatchers: %w", path, err)
		}
		if ir.target, err = compileMatchers(r.TargetMatchers); err != nil {
			return nil, fmt.Errorf("alerting: %s.targetMatchers: %w", path, err)
		}
		if len(ir.source) == 0 || len(ir.target) == 0 {
			return nil, fmt.Errorf("alerting: %s: needs sourceMatchers and targetMatchers", path)
		}
		in.rules = append(in.rules, ir)
	}
	return in, nil
}

// current refreshes firing from the state when another writer (the
// pipeline a reload replaced, a former leader) changed it. The caller
// holds mu.
func (in *inhibitor) current() map[string]firingGroup {
	v, _ := in.state.Get(firingKey)
	if v == in.raw && in.firing != nil {
		return in.firing
	}
	read := map[string]firingGroup{}
	if v != "" {
		if err := json.Unmarshal([]byte(v), &read); err != nil {
			in.log.Warn("ignoring unreadable firing Alertmanager alerts in the state; inhibition starts again from the next notifications", "err", err)
			read = map[string]firingGroup{}
		}
	}
	in.raw, in.firing = v, read
	return read
}

// observe learns from an Alertmanager group's event: firing adds or
// refreshes the group, resolved removes it. Other events are ignored, and
// nothing is tracked without rules.
func (in *inhibitor) observe(ctx context.Context, ev event.Event) {
	if len(in.rules) == 0 || ev.Group == "" {
		return
	}
	now := time.Now()
	in.mu.Lock()
	firing := in.current()
	switch ev.Transition {
	case event.Failing:
		g, ok := firing[ev.Group]
		if !ok {
			g.Since = now
		}
		g.Source, g.Labels, g.Seen = ev.Source, ev.Labels, now
		firing[ev.Group] = g
	case event.Resolved:
		if _, ok := firing[ev.Group]; !ok {
			in.mu.Unlock()
			return
		}
		delete(firing, ev.Group)
	default:
		in.mu.Unlock()
		return
	}
	for k, g := range firing {
		if now.Sub(g.Seen) > in.forget {
			delete(firing, k)
		}
	}
	for len(firing) > maxFiring {
		oldest := ""
		for k, g := range firing {
			if oldest == "" || g.Seen.Before(firing[oldest].Seen) {
				oldest = k
			}
		}
		in.log.Warn("forgetting the least recently notified firing Alertmanager alert group: too many fire", "max", maxFiring, "group", oldest)
		delete(firing, oldest)
	}
	value := ""
	if len(firing) > 0 {
		b, err := json.Marshal(firing)
		if err != nil {
			in.mu.Unlock()
			in.log.Error("firing Alertmanager alerts not saved", "err", err)
			return
		}
		value = string(b)
	}
	in.raw = value
	in.saveMu.Lock()
	defer in.saveMu.Unlock()
	in.mu.Unlock()
	if err := in.state.Set(ctx, firingKey, value); err != nil {
		in.log.Warn("firing Alertmanager alerts not saved; after a restart, inhibition waits for their next notification", "err", err)
	}
}

// inhibition is what inhibits an event: the rule and the firing group.
type inhibition struct {
	rule   *inhibitRule
	group  string
	firing firingGroup
}

// String names the rule and the inhibiting alert, for explain.
func (i inhibition) String() string {
	var ls []string
	for _, k := range append([]string{"alertname"}, i.rule.equal...) {
		if v, ok := i.firing.Labels[k]; ok && !slices.Contains(ls, k+"="+strconv.Quote(v)) {
			ls = append(ls, k+"="+strconv.Quote(v))
		}
	}
	return fmt.Sprintf("inhibit rule %s: Alertmanager alert {%s} (source %q) fires since %s; equal: %s",
		i.rule.name, strings.Join(ls, ", "), i.firing.Source, i.firing.Since.UTC().Format(time.RFC3339), strings.Join(i.rule.equal, ", "))
}

// inhibits returns what inhibits ev now, or nil. An Alertmanager alert is
// never inhibited here (Alertmanager's own inhibit_rules do that), nor is a
// resolution.
func (in *inhibitor) inhibits(ev event.Event, now time.Time) *inhibition {
	if len(in.rules) == 0 || ev.Group != "" || ev.Transition == event.Resolved {
		return nil
	}
	target := SilenceLabels(ev)
	in.mu.Lock()
	defer in.mu.Unlock()
	firing := in.current()
	for i := range in.rules {
		r := &in.rules[i]
		if !matchAll(r.target, target) {
			continue
		}
		// The first rule that inhibits wins; among its groups, the first by
		// key, so explain names the same one every time.
		var found *inhibition
		for k, g := range firing {
			if found != nil && k > found.group || now.Sub(g.Seen) > in.forget || !matchAll(r.source, g.Labels) {
				continue
			}
			if !slices.ContainsFunc(r.equal, func(l string) bool { return g.Labels[l] == "" || g.Labels[l] != target[l] }) {
				found = &inhibition{rule: r, group: k, firing: g}
			}
		}
		if found != nil {
			return found
		}
	}
	return nil
}

// matchAll reports whether labels match every matcher of ms.
func matchAll(ms amlabels.Matchers, labels map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(labels[m.Name]) {
			return false
		}
	}
	return true
}
