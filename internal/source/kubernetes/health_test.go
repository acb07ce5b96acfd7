package kubernetes

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

func crashPod(name string, crashing bool, since time.Time) *unstructured.Unstructured {
	p := pod("default", name, nil)
	state := map[string]any{"running": map[string]any{}}
	ready := "True"
	if crashing {
		state = map[string]any{"waiting": map[string]any{"reason": "CrashLoopBackOff", "message": "back-off"}}
		ready = "False"
	}
	p.Object["status"] = map[string]any{
		"phase":             "Running",
		"conditions":        []any{map[string]any{"type": "Ready", "status": ready, "lastTransitionTime": since.UTC().Format(time.RFC3339)}},
		"containerStatuses": []any{map[string]any{"name": "main", "state": state}},
	}
	p.SetCreationTimestamp(metaTime(since.Add(-time.Hour)))
	return p
}

func TestPodTransitions(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	s := newSource(t, config.Namespaces{}, config.Resource{Type: "v1/pods", Events: []string{"error"}})
	r := s.resources[0]
	healthy, broken := crashPod("web", false, now), crashPod("web", true, now)

	evs := s.toEvents(change{res: r, typ: event.Update, obj: broken, old: healthy})
	require.Len(t, evs, 1)
	require.Equal(t, event.Failing, evs[0].Transition)
	require.Equal(t, "CrashLoopBackOff", evs[0].Reason)
	require.Equal(t, "Pod default/web is failing (CrashLoopBackOff)", evs[0].Title())

	require.Empty(t, s.toEvents(change{res: r, typ: event.Update, obj: broken, old: broken}), "still failing: no news")

	evs = s.toEvents(change{res: r, typ: event.Update, obj: healthy, old: broken})
	require.Len(t, evs, 1)
	require.Equal(t, event.Resolved, evs[0].Transition)
	require.Equal(t, "CrashLoopBackOff", evs[0].Reason, "a resolution names what it resolves")

	evs = s.toEvents(change{res: r, typ: event.Delete, obj: broken})
	require.Len(t, evs, 1)
	require.Equal(t, event.Resolved, evs[0].Transition)
	require.Empty(t, s.toEvents(change{res: r, typ: event.Delete, obj: healthy}))

	// Initial list: a failure that predates the agent is not news; a
	// healthy object may resolve an alert recorded before a restart.
	require.Empty(t, s.toEvents(change{res: r, typ: event.Create, obj: broken, initial: true}))
	evs = s.toEvents(change{res: r, typ: event.Create, obj: healthy, initial: true})
	require.Len(t, evs, 1)
	require.Equal(t, event.Resolved, evs[0].Transition)

	// After a hand-over, failures that began after the checkpoint are replayed.
	s.opts.Since = now.Add(-time.Minute)
	evs = s.toEvents(change{res: r, typ: event.Create, obj: broken, initial: true})
	require.Len(t, evs, 1)
	require.Equal(t, event.Failing, evs[0].Transition)
	s.opts.Since = now.Add(time.Minute)
	require.Empty(t, s.toEvents(change{res: r, typ: event.Create, obj: broken, initial: true}))
}

func TestDeploymentAndJobHealth(t *testing.T) {
	created := time.Now().Add(-time.Hour)
	dep := func(available string, since time.Time) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
			"status": map[string]any{"conditions": []any{map[string]any{"type": "Available", "status": available,
				"lastTransitionTime": since.UTC().Format(time.RFC3339), "message": "Deployment does not have minimum availability."}}}}}
		u.SetCreationTimestamp(metaTime(created))
		return u
	}
	h, ok := healthOf(dep("False", created.Add(time.Second)))
	require.True(t, ok)
	require.False(t, h.failing, "a new Deployment's first rollout is not an outage")
	h, _ = healthOf(dep("False", created.Add(10*time.Minute)))
	require.True(t, h.failing)
	require.Equal(t, "Unavailable", h.reason)

	job := &unstructured.Unstructured{Object: map[string]any{"kind": "Job", "status": map[string]any{
		"conditions": []any{map[string]any{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}}}}}
	h, _ = healthOf(job)
	require.True(t, h.failing)
	require.Equal(t, "BackoffLimitExceeded", h.reason)
	_, ok = healthOf(&unstructured.Unstructured{Object: map[string]any{"kind": "ConfigMap"}})
	require.False(t, ok)
}
