package chart_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestHelmTestProbesReadyz: the chart's test hook runs the agent's image
// as "kubechat probe" against /readyz through the release's Service, locked
// down like the agent.
func TestHelmTestProbesReadyz(t *testing.T) {
	ch, err := loader.Load(chartDir)
	require.NoError(t, err)
	var found bool
	for _, tpl := range ch.Templates {
		found = found || tpl.Name == "templates/tests/readyz.yaml"
	}
	require.True(t, found, "the chart has a test hook")
	objs := mustRender(t, valuesOf(t, "service: {port: 9090}\nimage: {tag: v9.9.9}\n"))
	for _, o := range objs {
		require.NotEqual(t, "kubechat-test-readyz", o.GetName(), "helm template leaves test hooks out of the manifest")
	}
	hooks := renderHooks(t, valuesOf(t, "service: {port: 9090}\nimage: {tag: v9.9.9}\n"))
	pod := find(t, hooks, "Pod", "kubechat-test-readyz")
	require.Equal(t, "test", pod.GetAnnotations()["helm.sh/hook"])
	c := pod.Object["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	require.Equal(t, []any{"probe", "--timeout", "30s", "http://kubechat.kubechat.svc:9090/readyz"}, c["args"])
	require.Contains(t, c["image"], ":v9.9.9", "the agent's own image")
	sc := c["securityContext"].(map[string]any)
	require.Equal(t, true, sc["readOnlyRootFilesystem"])
	require.Equal(t, false, sc["allowPrivilegeEscalation"])
}

// renderHooks renders the release's hooks (helm template --show-only hooks).
func renderHooks(t *testing.T, vals map[string]any) []*unstructured.Unstructured {
	t.Helper()
	ch, err := loader.Load(chartDir)
	require.NoError(t, err)
	in := action.NewInstall(&action.Configuration{})
	in.DryRun, in.ClientOnly, in.Replace = true, true, true
	in.ReleaseName, in.Namespace = "kubechat", "kubechat"
	rel, err := in.Run(ch, vals)
	require.NoError(t, err)
	var out []*unstructured.Unstructured
	for _, h := range rel.Hooks {
		var m map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(h.Manifest), &m))
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}
