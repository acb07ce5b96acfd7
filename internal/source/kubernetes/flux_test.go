package kubernetes

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/testenv"
)

// TestKustomizationReadyTransitions: a Flux Kustomization whose Ready
// condition turns False is one failing alert with the controller's reason
// and message; further failures say nothing new; Ready True resolves it.
func TestKustomizationReadyTransitions(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	dir, err := testenv.FluxCRDDir()
	require.NoError(t, err)
	require.NoError(t, env.InstallCRDs(ctx, dir))
	const ns = "flux-alerts"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	gvr := schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
	ks := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
		"metadata": map[string]any{"name": "apps", "namespace": ns},
		"spec": map[string]any{"interval": "5m", "path": "./deploy", "prune": true,
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "fleet"}},
	}}
	_, err = dyn.Resource(gvr).Namespace(ns).Create(ctx, ks, metav1.CreateOptions{})
	require.NoError(t, err)

	_, out := startSource(t, config.Source{Name: "flux", Type: "kubernetes", Kubernetes: &config.KubernetesSource{
		Resources: []config.Resource{{Type: "kustomize.toolkit.fluxcd.io/v1/kustomizations", Events: []string{"error"}}},
	}}, Options{})
	// Not reconciled yet (no Ready condition): nothing to say.
	setReady := func(status, reason, message string) {
		t.Helper()
		cur, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, "apps", metav1.GetOptions{})
		require.NoError(t, err)
		require.NoError(t, unstructured.SetNestedSlice(cur.Object, []any{map[string]any{
			"type": "Ready", "status": status, "reason": reason, "message": message,
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
		}}, "status", "conditions"))
		_, err = dyn.Resource(gvr).Namespace(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	setReady("True", "ReconciliationSucceeded", "Applied revision: main@sha1:1")
	// From no state to Ready: a resolution the router ignores, as it has no alert open.
	require.Eventually(t, func() bool { return len(out.events()) == 1 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, event.Resolved, out.events()[0].Transition)
	out.reset()
	setReady("False", "BuildFailed", "kustomize build failed: accumulating resources")
	require.Eventually(t, func() bool { return len(out.events()) == 1 }, 10*time.Second, 20*time.Millisecond)
	ev := out.events()[0]
	require.Equal(t, event.Failing, ev.Transition)
	require.Equal(t, event.Object{APIVersion: "kustomize.toolkit.fluxcd.io/v1", Kind: "Kustomization", Namespace: ns, Name: "apps"}, ev.Object)
	require.Equal(t, "BuildFailed", ev.Reason)
	require.Equal(t, "kustomize build failed: accumulating resources", ev.Message)

	// Each reconciliation starts with Ready Unknown: that is neither a
	// recovery nor a new failure.
	setReady("Unknown", "Progressing", "reconciliation in progress")
	setReady("False", "HealthCheckFailed", "timeout waiting for: [Deployment/apps/web status: 'InProgress']")
	setReady("Unknown", "Progressing", "reconciliation in progress")
	setReady("True", "ReconciliationSucceeded", "Applied revision: main@sha1:2")
	require.Eventually(t, func() bool {
		return len(out.events()) > 1 && out.events()[len(out.events())-1].Transition == event.Resolved
	},
		10*time.Second, 20*time.Millisecond)
	for _, ev := range out.events()[1 : len(out.events())-1] {
		// The informer may coalesce updates; whatever it delivers between
		// is the same failure again, which the router keeps as one alert.
		require.Equal(t, event.Failing, ev.Transition)
	}
}
