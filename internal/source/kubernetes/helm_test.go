package kubernetes

import (
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
// pending state alerts only once it has lasted the grace period.
func TestHelmReleaseTransitions(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	const ns = "helm-src"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, helmtest.Install(ctx, env.Config, ns, "web", helmtest.Chart("web"), nil))

	_, out := startSource(t, config.Source{Name: "helm", Type: "kubernetes", Kubernetes: &config.KubernetesSource{
		Resources: []config.Resource{{Type: "v1/secrets", Labels: "owner=helm", Events: []string{"error"}}},
	}}, Options{PendingGrace: 2 * time.Second})
	events := out.events
	release := event.Object{APIVersion: "helm.sh/v3", Kind: "HelmRelease", Namespace: ns, Name: "web"}
	// The initial list resolves what may have recovered while the agent was
	// away (the router ignores a resolution with no open alert).
	require.Eventually(t, func() bool { return len(events()) == 1 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, event.Resolved, events()[0].Transition)
	require.Equal(t, release, events()[0].Object)
	out.reset()

	require.Error(t, helmtest.Upgrade(ctx, env.Config, ns, "web", map[string]any{"replicas": -1}))
	require.Eventually(t, func() bool { return len(events()) == 1 }, 10*time.Second, 20*time.Millisecond)
	ev := events()[0]
	require.Equal(t, event.Failing, ev.Transition)
	require.Equal(t, release, ev.Object)
	require.Equal(t, "HelmReleaseFailed", ev.Reason)
	require.Contains(t, ev.Message, "revision 2 of release web failed")

	require.NoError(t, helmtest.Rollback(env.Config, ns, "web", 1))
	require.Eventually(t, func() bool { return len(events()) == 2 }, 10*time.Second, 20*time.Millisecond)
	ev = events()[1]
	require.Equal(t, event.Resolved, ev.Transition)
	require.Equal(t, release, ev.Object)
	time.Sleep(time.Second)
	require.Len(t, events(), 2, "one alert and one resolution, whatever the revisions in between did")

	// A release left pending-rollback (the Helm process died mid-way).
	setStatus := func(status string) {
		t.Helper()
		patch := []byte(`{"metadata":{"labels":{"status":"` + status + `"}}}`)
		_, err := env.Client.CoreV1().Secrets(ns).Patch(ctx, "sh.helm.release.v1.web.v3", types.MergePatchType, patch, metav1.PatchOptions{})
		require.NoError(t, err)
	}
	setStatus("pending-rollback")
	time.Sleep(time.Second)
	require.Len(t, events(), 2, "pending for less than the grace period is not news")
	require.Eventually(t, func() bool { return len(events()) == 3 }, 10*time.Second, 20*time.Millisecond)
	ev = events()[2]
	require.Equal(t, event.Failing, ev.Transition)
	require.Equal(t, "HelmReleasePendingRollback", ev.Reason)
	setStatus("deployed")
	require.Eventually(t, func() bool { return len(events()) == 4 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, event.Resolved, events()[3].Transition)

	// A pending state that ends within the grace period says nothing.
	setStatus("pending-upgrade")
	time.Sleep(500 * time.Millisecond)
	setStatus("deployed")
	time.Sleep(3 * time.Second)
	require.Len(t, events(), 5, "only the resolution of a failure never raised, which the router ignores")
	require.Equal(t, event.Resolved, events()[4].Transition)
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
