package kubernetes

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/testenv"
)

// TestOwnObjectsAreNotReported: the agent writes its state and outbox
// ConfigMaps all the time; a source that watches ConfigMaps where they live
// reports neither their creation nor their updates (an alert about each
// write would cause another write), and still reports the others. With
// one worker, a sentinel created after them is handled after them.
func TestOwnObjectsAreNotReported(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	const ns = "own-objects"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	_, out := startSource(t, config.Source{Name: "cms", Type: "kubernetes", Kubernetes: &config.KubernetesSource{
		Namespaces: config.Namespaces{Include: []string{ns}},
		Resources:  []config.Resource{{Type: "v1/configmaps", Events: []string{"create", "update"}}},
	}}, Options{Workers: 1, Own: []string{"configmaps " + ns + "/kubechat-state", "configmaps " + ns + "/kubechat-outbox", "leases.coordination.k8s.io " + ns + "/kubechat-state"}})
	cms := env.Client.CoreV1().ConfigMaps(ns)
	for _, name := range []string{"kubechat-state", "kubechat-outbox", "kubechat-buttons-of-another-agent"} {
		_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = cms.Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": "v"}}, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "sentinel"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, ev := range out.events() {
			if ev.Object.Name == "sentinel" {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	var names []string
	for _, ev := range out.events() {
		names = append(names, ev.Object.Name)
	}
	require.Equal(t, []string{"kubechat-buttons-of-another-agent", "kubechat-buttons-of-another-agent", "sentinel"}, names)
}
