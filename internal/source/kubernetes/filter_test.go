package kubernetes

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

func newSource(t *testing.T, ns config.Namespaces, res ...config.Resource) *Source {
	t.Helper()
	s, err := New(config.Source{Name: "k8s", Type: "kubernetes", Kubernetes: &config.KubernetesSource{Namespaces: ns, Resources: res}},
		"dev", nil, slog.New(slog.DiscardHandler), Options{})
	require.NoError(t, err)
	return s
}

func pod(ns, name string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Pod")
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetLabels(labels)
	return u
}

func TestFilters(t *testing.T) {
	s := newSource(t, config.Namespaces{Exclude: []string{"kube-.*"}},
		config.Resource{Type: "v1/pods", Events: []string{"create", "delete"}, Name: "web-.*", Labels: "tier!=cache"})
	r := s.resources[0]
	for name, tc := range map[string]struct {
		c    change
		want bool
	}{
		"matching create":     {change{res: r, typ: event.Create, obj: pod("default", "web-1", nil)}, true},
		"excluded namespace":  {change{res: r, typ: event.Create, obj: pod("kube-system", "web-1", nil)}, false},
		"exclusion anchored":  {change{res: r, typ: event.Create, obj: pod("my-kube-x", "web-1", nil)}, true},
		"name not matching":   {change{res: r, typ: event.Create, obj: pod("default", "api-1", nil)}, false},
		"name anchored":       {change{res: r, typ: event.Create, obj: pod("default", "my-web-1", nil)}, false},
		"label excluded":      {change{res: r, typ: event.Create, obj: pod("default", "web-1", map[string]string{"tier": "cache"})}, false},
		"update not selected": {change{res: r, typ: event.Update, obj: pod("default", "web-1", nil)}, false},
		"delete selected":     {change{res: r, typ: event.Delete, obj: pod("default", "web-1", nil)}, true},
	} {
		t.Run(name, func(t *testing.T) {
			evs := s.toEvents(tc.c)
			require.Equal(t, tc.want, len(evs) == 1)
			if len(evs) == 1 {
				ev := evs[0]
				require.Equal(t, "dev", ev.Cluster)
				require.Equal(t, "k8s", ev.Source)
				require.Equal(t, tc.c.obj.GetName(), ev.Object.Name)
			}
		})
	}
}

func TestWarningEventsReportTheirObject(t *testing.T) {
	s := newSource(t, config.Namespaces{}, config.Resource{Type: "v1/events", Events: []string{"error"}})
	r := s.resources[0]
	ev := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Event",
		"metadata":       map[string]any{"namespace": "default", "name": "web-1.abc"},
		"type":           "Warning",
		"reason":         "BackOff",
		"message":        "Back-off restarting failed container ",
		"involvedObject": map[string]any{"apiVersion": "v1", "kind": "Pod", "namespace": "default", "name": "web-1"},
	}}
	evs := s.toEvents(change{res: r, typ: event.Create, obj: ev})
	require.Len(t, evs, 1)
	got := evs[0]
	require.Equal(t, event.Error, got.Type)
	require.Equal(t, event.Warn, got.Level)
	require.Equal(t, event.Object{APIVersion: "v1", Kind: "Pod", Namespace: "default", Name: "web-1"}, got.Object)
	require.Equal(t, "BackOff", got.Reason)
	require.Equal(t, "Back-off restarting failed container", got.Message)

	normal := ev.DeepCopy()
	normal.Object["type"] = "Normal"
	require.Empty(t, s.toEvents(change{res: r, typ: event.Create, obj: normal}), "Normal events are not errors")
	require.Empty(t, s.toEvents(change{res: r, typ: event.Delete, obj: ev}), "an Event's own deletion is not news")
	require.Empty(t, s.toEvents(change{res: r, typ: event.Create, obj: ev, initial: true}), "nothing from the initial list")
}

func TestNewRejectsBadFilters(t *testing.T) {
	_, err := New(config.Source{Name: "k8s", Kubernetes: &config.KubernetesSource{Resources: []config.Resource{{Type: "v1/pods", Name: "("}}}},
		"dev", nil, slog.New(slog.DiscardHandler), Options{})
	require.ErrorContains(t, err, `kubernetes source "k8s": resources[0]: invalid regular expression "("`)
}

func metaTime(t time.Time) metav1.Time { return metav1.NewTime(t) }

func TestUpdateFieldsAndNoOps(t *testing.T) {
	s := newSource(t, config.Namespaces{}, config.Resource{Type: "apps/v1/deployments", Events: []string{"update"},
		Fields: []string{"spec.replicas", "spec.template.spec.containers[0].image"}})
	r := s.resources[0]
	dep := func(replicas int64, image, rv string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "namespace": "default", "resourceVersion": rv},
			"spec": map[string]any{"replicas": replicas, "template": map[string]any{"spec": map[string]any{
				"containers": []any{map[string]any{"name": "main", "image": image}}}}},
			"status": map[string]any{"observedGeneration": int64(2)}}}
		return u
	}
	evs := s.toEvents(change{res: r, typ: event.Update, old: dep(1, "web:1", "1"), obj: dep(3, "web:2", "2")})
	require.Len(t, evs, 1)
	require.Equal(t, []event.Field{
		{Name: "spec.replicas", Value: "1 → 3"},
		{Name: "spec.template.spec.containers[0].image", Value: `"web:1" → "web:2"`},
	}, evs[0].Fields)

	changedStatus := dep(1, "web:1", "3")
	changedStatus.Object["status"] = map[string]any{"observedGeneration": int64(3)}
	require.Empty(t, s.toEvents(change{res: r, typ: event.Update, old: dep(1, "web:1", "1"), obj: changedStatus}),
		"a change outside the watched fields is not reported")

	whole := newSource(t, config.Namespaces{}, config.Resource{Type: "apps/v1/deployments", Events: []string{"update"}})
	require.Empty(t, whole.toEvents(change{res: whole.resources[0], typ: event.Update, old: dep(1, "web:1", "1"), obj: dep(1, "web:1", "2")}),
		"a new resourceVersion alone is a no-op")
	evs = whole.toEvents(change{res: whole.resources[0], typ: event.Update, old: dep(1, "web:1", "1"), obj: dep(2, "web:1", "2")})
	require.Len(t, evs, 1)
	require.Equal(t, []event.Field{{Name: "Changed", Value: "spec"}}, evs[0].Fields)
}

func TestEventReasonMessageAndAnnotationFilters(t *testing.T) {
	s := newSource(t, config.Namespaces{}, config.Resource{Type: "v1/events", Events: []string{"error"},
		Reasons: []string{"BackOff", "Failed"}, Message: "image|container"})
	r := s.resources[0]
	mk := func(reason, msg string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Event", "type": "Warning",
			"metadata": map[string]any{"name": "e", "namespace": "default"}, "reason": reason, "message": msg,
			"involvedObject": map[string]any{"kind": "Pod", "name": "p", "namespace": "default"}}}
	}
	require.Len(t, s.toEvents(change{res: r, typ: event.Create, obj: mk("BackOff", "restarting failed container")}), 1)
	require.Empty(t, s.toEvents(change{res: r, typ: event.Create, obj: mk("Unhealthy", "container probe failed")}), "reason filtered")
	require.Empty(t, s.toEvents(change{res: r, typ: event.Create, obj: mk("Failed", "volume mount failed")}), "message filtered")

	a := newSource(t, config.Namespaces{}, config.Resource{Type: "v1/pods", Events: []string{"create"}, Annotations: "kubechat.io/ignore!=true"})
	p := pod("default", "x", nil)
	require.Len(t, a.toEvents(change{res: a.resources[0], typ: event.Create, obj: p}), 1)
	p.SetAnnotations(map[string]string{"kubechat.io/ignore": "true"})
	require.Empty(t, a.toEvents(change{res: a.resources[0], typ: event.Create, obj: p}))
}
