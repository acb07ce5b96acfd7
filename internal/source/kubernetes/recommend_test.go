package kubernetes

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Nodes: 1}) }

func TestPodRecommendations(t *testing.T) {
	s := newSource(t, config.Namespaces{}, config.Resource{Type: "v1/pods"})
	s.recommend = config.Recommendations{LatestTag: true, ResourceLimits: true, PodLabels: true}
	p := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "web-1", "namespace": "default",
			"ownerReferences": []any{map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "1", "controller": true}}},
		"spec": map[string]any{"containers": []any{
			map[string]any{"name": "app", "image": "nginx", "resources": map[string]any{"limits": map[string]any{"cpu": "1"}}},
			map[string]any{"name": "sidecar", "image": "registry.example:5000/proxy:1.2", "resources": map[string]any{"limits": map[string]any{"cpu": "1", "memory": "1Gi"}}},
			map[string]any{"name": "pinned", "image": "busybox@sha256:abc", "resources": map[string]any{"limits": map[string]any{"cpu": "1", "memory": "1Gi"}}},
		}}}}
	ev, ok := s.recommendations(t.Context(), p)
	require.True(t, ok)
	require.Equal(t, event.Warning, ev.Type)
	require.Equal(t, "ReplicaSet default/web-abc", ev.Object.String(), "replicas fold into their controller")
	require.Equal(t, []event.Field{
		{Name: "Image tag", Value: `container app uses "nginx": pin a version or digest`},
		{Name: "Resource limits", Value: "container app has no memory limit"},
		{Name: "Labels", Value: "the pod has no labels: selectors, policies and cost reports cannot find it"},
	}, ev.Fields)

	s.recommend = config.Recommendations{}
	_, ok = s.recommendations(t.Context(), p)
	require.False(t, ok, "every check is off by default")
	for image, latest := range map[string]bool{"nginx": true, "nginx:latest": true, "nginx:1.27": false, "host:5000/nginx": true, "host:5000/nginx:2": false} {
		require.Equal(t, latest, usesLatest(image), image)
	}
}

// TestIngressRecommendationAgainstTheAPIServer checks missing backends and
// TLS Secrets through the real API server, then the whole source: informer,
// queue and emit.
func TestIngressRecommendationAgainstTheAPIServer(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	require.NoError(t, env.CreateNamespace(ctx, "ingress"))
	_, err := env.Client.CoreV1().Services("ingress").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	require.NoError(t, err)

	_, out := startSource(t, config.Source{Name: "net", Type: "kubernetes", Kubernetes: &config.KubernetesSource{
		Resources:       []config.Resource{{Type: "networking.k8s.io/v1/ingresses", Events: []string{"create"}}},
		Recommendations: config.Recommendations{IngressBackends: true},
	}}, Options{})

	pathType := networkingv1.PathTypePrefix
	backend := func(svc string) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}
	}
	_, err = env.Client.NetworkingV1().Ingresses("ingress").Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "site"},
		Spec: networkingv1.IngressSpec{
			TLS: []networkingv1.IngressTLS{{Hosts: []string{"a.example"}, SecretName: "site-tls"}},
			Rules: []networkingv1.IngressRule{{Host: "a.example", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{
					{Path: "/", PathType: &pathType, Backend: backend("web")},
					{Path: "/api", PathType: &pathType, Backend: backend("api")},
				}}}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(out.events()) == 2 }, 10*time.Second, 20*time.Millisecond)
	got := out.events()
	require.Equal(t, event.Create, got[0].Type)
	require.Equal(t, "Recommendation", got[1].Reason)
	require.Equal(t, []event.Field{
		{Name: "Service", Value: `Service "api" does not exist in ingress`},
		{Name: "TLS Secret", Value: `TLS Secret "site-tls" does not exist in ingress`},
	}, got[1].Fields)
}
