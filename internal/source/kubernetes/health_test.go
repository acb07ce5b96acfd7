package kubernetes

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

func TestSlimKeepsWhatChecksRead(t *testing.T) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"app": "x"},
			Annotations:   map[string]string{lastApplied: "{...}", "team": "a"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "token"}},
			Containers: []corev1.Container{{Name: "c", Image: "i:1", Env: []corev1.EnvVar{{Name: "A", Value: "b"}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse("1")}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}},
	}
	out, err := slim(p)
	require.NoError(t, err)
	s := out.(*corev1.Pod)
	require.Nil(t, s.ManagedFields)
	require.Equal(t, map[string]string{"team": "a"}, s.Annotations)
	require.Nil(t, s.Spec.Volumes)
	require.Nil(t, s.Spec.Containers[0].Env)
	require.Equal(t, "i:1", s.Spec.Containers[0].Image)
	require.NotNil(t, s.Spec.Containers[0].Resources.Limits, "limits stay for the recommendation")
	require.Equal(t, "CrashLoopBackOff", s.Status.ContainerStatuses[0].State.Waiting.Reason, "status stays for transitions")
	require.Equal(t, map[string]string{"app": "x"}, s.Labels)
}
