package kubernetes

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/helm/helmtest"
)

// TestHelmReleaseTransitions drives real Helm operations (SDK) against the
// API server and watches the release Secrets' labels: a failed upgrade is
// one failing alert about the release, a rollback resolves it, and a
// pending state alerts only once it has lasted the grace period. What must
// not happen is checked against a second release, "sentinel": with one
// worker, the source handles changes in the order the API server made
// them, so the sentinel's event comes after anything web's earlier changes
// could have caused (its delayed recheck too, scheduled earlier with the
// same grace).
func TestHelmReleaseTransitions(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	const ns = "helm-src"
	const grace = 2 * time.Second
	require.NoError(t, env.CreateNamespace(ctx, ns))
	for _, name := range []string{"web", "sentinel"} {
		require.NoError(t, helmtest.Install(ctx, env.Config, ns, name, helmtest.Chart("web"), nil))
	}

	_, out := startSource(t, config.Source{Name: "helm", Type: "kubernetes", Kubernetes: &config.KubernetesSource{
		Resources: []config.Resource{{Type: "v1/secrets", Labels: "owner=helm", Events: []string{"error"}}},
	}}, Options{PendingGrace: grace, Workers: 1})
	of := func(name string) []event.Event {
		var evs []event.Event
		for _, ev := range out.events() {
			if ev.Object.Name == name {
				evs = append(evs, ev)
			}
		}
		return evs
	}
	wait := func(name string, n int) []event.Event {
		t.Helper()
		require.Eventually(t, func() bool { return len(of(name)) >= n }, 10*time.Second, 20*time.Millisecond, "%d events of %s", n, name)
		return of(name)
	}
	setStatus := func(release string, revision int, status string) {
		t.Helper()
		patch := []byte(`{"metadata":{"labels":{"status":"` + status + `"}}}`)
		_, err := env.Client.CoreV1().Secrets(ns).Patch(ctx, fmt.Sprintf("sh.helm.release.v1.%s.v%d", release, revision), types.MergePatchType, patch, metav1.PatchOptions{})
		require.NoError(t, err)
	}
	release := event.Object{APIVersion: "helm.sh/v3", Kind: "HelmRelease", Namespace: ns, Name: "web"}
	// The initial list resolves what may have recovered while the agent was
	// away (the router ignores a resolution with no open alert).
	wait("sentinel", 1)
	evs := wait("web", 1)
	require.Equal(t, event.Resolved, evs[0].Transition)
	require.Equal(t, release, evs[0].Object)
	out.reset()

	require.Error(t, helmtest.Upgrade(ctx, env.Config, ns, "web", map[string]any{"replicas": -1}))
	ev := wait("web", 1)[0]
	require.Equal(t, event.Failing, ev.Transition)
	require.Equal(t, release, ev.Object)
	require.Equal(t, "HelmReleaseFailed", ev.Reason)
	require.Contains(t, ev.Message, "revision 2 of release web failed")

	require.NoError(t, helmtest.Rollback(env.Config, ns, "web", 1))
	ev = wait("web", 2)[1]
	require.Equal(t, event.Resolved, ev.Transition)
	require.Equal(t, release, ev.Object)
	require.Error(t, helmtest.Upgrade(ctx, env.Config, ns, "sentinel", map[string]any{"replicas": -1}))
	wait("sentinel", 1)
	require.Len(t, of("web"), 2, "one alert and one resolution, whatever the revisions in between did")
	require.NoError(t, helmtest.Rollback(env.Config, ns, "sentinel", 1))
	require.Equal(t, event.Resolved, wait("sentinel", 2)[1].Transition)

	// A release left pending-rollback (the Helm process died mid-way)
	// alerts once the grace has passed, and not before.
	pending := time.Now()
	setStatus("web", 3, "pending-rollback")
	ev = wait("web", 3)[2]
	require.GreaterOrEqual(t, time.Since(pending), grace, "pending for less than the grace period is not news")
	require.Equal(t, event.Failing, ev.Transition)
	require.Equal(t, "HelmReleasePendingRollback", ev.Reason)
	setStatus("web", 3, "deployed")
	require.Equal(t, event.Resolved, wait("web", 4)[3].Transition)

	// A pending state that ends within the grace period says nothing: the
	// sentinel's own pending alert, due after web's recheck, comes alone.
	setStatus("web", 3, "pending-upgrade")
	setStatus("web", 3, "deployed")
	setStatus("sentinel", 3, "pending-upgrade")
	require.Eventually(t, func() bool {
		evs := of("sentinel")
		return len(evs) > 0 && evs[len(evs)-1].Reason == "HelmReleasePendingUpgrade"
	}, 10*time.Second, 20*time.Millisecond, "the sentinel's pending alert")
	evs = of("web")
	require.Len(t, evs, 5, "only the resolution of a failure never raised, which the router ignores")
	require.Equal(t, event.Resolved, evs[4].Transition)
}

// TestSecretsAreWatchedWithoutValues: the cache holds Secret metadata only,
// without kubectl's last-applied copy of the data.
func TestSecretsAreWatchedWithoutValues(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	src, out := startSource(t, config.Source{Name: "s", Type: "kubernetes", Kubernetes: &config.KubernetesSource{
		Resources: []config.Resource{{Type: "v1/secrets", Events: []string{"create", "update"}}},
	}}, Options{})
	require.NoError(t, env.CreateNamespace(ctx, "plain-secrets"))
	_, err := env.Client.CoreV1().Secrets("plain-secrets").Create(ctx, secretWithLastApplied("token", "tok-value-1"), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = env.Client.CoreV1().Secrets("plain-secrets").Update(ctx, secretWithLastApplied("token", "tok-value-2"), metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(out.events()) == 2 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, []event.Field{{Name: "Changed", Value: "data (values not shown)"}}, out.events()[1].Fields)
	for _, o := range src.resources[0].store.List() {
		p, ok := o.(*metav1.PartialObjectMetadata)
		require.True(t, ok, "%T in the cache", o)
		require.NotContains(t, p.Annotations, lastApplied)
	}
}

func secretWithLastApplied(name, value string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
			lastApplied: `{"apiVersion":"v1","kind":"Secret","stringData":{"token":"` + value + `"}}`,
		}},
		StringData: map[string]string{"token": value},
	}
}
