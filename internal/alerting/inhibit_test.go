package alerting

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/state"
)

// TestInhibitRules: what inhibits and what does not, rule by rule.
func TestInhibitRules(t *testing.T) {
	in, err := newInhibitor(config.Inhibit{ForgetAfter: config.Duration(time.Hour), Rules: []config.InhibitRule{{
		Name: "workload", SourceMatchers: []string{`severity="critical"`}, TargetMatchers: []string{`source="pods"`},
		Equal: []string{"namespace", "deployment"},
	}}}, state.NewMemory(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx := context.Background()
	firing := func(group string, labels map[string]string) event.Event {
		return event.Event{Source: "am", Group: group, Transition: event.Failing, Labels: labels}
	}
	pod := event.Event{Source: "pods", Transition: event.Failing, Reason: "CrashLoopBackOff",
		Object: event.Object{Kind: "Pod", Namespace: "apps", Name: "web-7d4b9c6f8-x2x9z"}}
	now := time.Now()

	require.Nil(t, in.inhibits(pod, now), "nothing fires")
	in.observe(ctx, firing("g1", map[string]string{"severity": "warning", "namespace": "apps", "deployment": "web"}))
	require.Nil(t, in.inhibits(pod, now), "the source matchers refuse a warning")
	in.observe(ctx, firing("g2", map[string]string{"severity": "critical", "namespace": "apps"}))
	require.Nil(t, in.inhibits(pod, now), "an alert without an equal label inhibits nothing (unlike Alertmanager)")
	in.observe(ctx, firing("g3", map[string]string{"severity": "critical", "namespace": "apps", "deployment": "api"}))
	require.Nil(t, in.inhibits(pod, now), "another deployment")

	in.observe(ctx, firing("g4", map[string]string{"alertname": "Down", "severity": "critical", "namespace": "apps", "deployment": "web"}))
	got := in.inhibits(pod, now)
	require.NotNil(t, got)
	require.Equal(t, "g4", got.group)
	require.Contains(t, got.String(), `inhibit rule workload: Alertmanager alert {alertname="Down", namespace="apps", deployment="web"} (source "am")`)

	other := pod
	other.Source = "deploys"
	require.Nil(t, in.inhibits(other, now), "the target matchers refuse another source")
	res := pod
	res.Transition = event.Resolved
	require.Nil(t, in.inhibits(res, now), "a resolution is never inhibited")
	am := firing("g5", map[string]string{"severity": "critical", "namespace": "apps", "deployment": "web"})
	am.Source = "pods"
	require.Nil(t, in.inhibits(am, now), "an Alertmanager alert is never a target")
	require.Nil(t, in.inhibits(pod, now.Add(2*time.Hour)), "a group not notified within forgetAfter is forgotten")

	// The state holds what fires: another inhibitor (a restart) reads it.
	again, err := newInhibitor(config.Inhibit{Rules: []config.InhibitRule{{
		SourceMatchers: []string{`severity="critical"`}, TargetMatchers: []string{`source="pods"`}, Equal: []string{"namespace", "deployment"},
	}}}, in.state, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	got = again.inhibits(pod, now)
	require.NotNil(t, got)
	require.Contains(t, got.String(), "inhibit rule inhibit.rules[0]:", "a rule without a name is named by its place")

	in.observe(ctx, event.Event{Source: "am", Group: "g4", Transition: event.Resolved})
	require.Nil(t, in.inhibits(pod, now), "resolved: no longer inhibits")
	require.Nil(t, again.inhibits(pod, now), "and the state says so")
}

// TestFiringIsBounded: at most maxFiring groups are kept, the least
// recently notified forgotten first.
func TestFiringIsBounded(t *testing.T) {
	in, err := newInhibitor(config.Inhibit{Rules: []config.InhibitRule{{
		SourceMatchers: []string{`severity="critical"`}, TargetMatchers: []string{`source="pods"`},
	}}}, state.NewMemory(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	for i := range maxFiring + 5 {
		in.observe(context.Background(), event.Event{Source: "am", Group: "g" + strconv.Itoa(i), Transition: event.Failing,
			Labels: map[string]string{"severity": "critical"}})
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	require.Len(t, in.current(), maxFiring)
	require.NotContains(t, in.current(), "g0")
	require.Contains(t, in.current(), "g"+strconv.Itoa(maxFiring+4))
}

// BenchmarkInhibits measures the check every routed event pays once rules
// exist, in its worst case: maxFiring groups fire, none inhibits.
func BenchmarkInhibits(b *testing.B) {
	in, err := newInhibitor(config.Inhibit{Rules: []config.InhibitRule{{
		SourceMatchers: []string{`severity="critical"`}, TargetMatchers: []string{`source="pods"`}, Equal: []string{"namespace", "deployment"},
	}}}, state.NewMemory(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	for i := range maxFiring {
		in.observe(context.Background(), event.Event{Source: "am", Group: "g" + strconv.Itoa(i), Transition: event.Failing,
			Labels: map[string]string{"severity": "critical", "namespace": "apps", "deployment": "d" + strconv.Itoa(i)}})
	}
	pod := event.Event{Source: "pods", Transition: event.Failing, Object: event.Object{Kind: "Pod", Namespace: "apps", Name: "web-7d4b9c6f8-x2x9z"}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if in.inhibits(pod, now) != nil {
			b.Fatal("inhibited")
		}
	}
}
