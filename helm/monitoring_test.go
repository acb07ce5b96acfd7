package chart_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// documentedMetrics are the metric names docs/metrics.md lists in its table.
func documentedMetrics(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../docs/metrics.md")
	require.NoError(t, err)
	var names []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(kubechat_[a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		names = append(names, m[1])
	}
	require.NotEmpty(t, names)
	return names
}

// usedMetrics are the kubechat_ metric names an expression reads; a
// histogram's series name its metric without _bucket, _sum or _count.
func usedMetrics(expr string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`kubechat_[a-z_]+`).FindAllString(expr, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			m = strings.TrimSuffix(m, suffix)
		}
		out = append(out, m)
	}
	return out
}

// TestRulesAndDashboardReadDocumentedMetrics: the PrometheusRule and the
// Grafana dashboard render when switched on (and not otherwise), and read
// only metrics that docs/metrics.md documents (and a test scrapes), and
// every alert the chart defines is documented.
func TestRulesAndDashboardReadDocumentedMetrics(t *testing.T) {
	documented := documentedMetrics(t)
	for _, o := range mustRender(t, map[string]any{}) {
		require.NotContains(t, []string{"PrometheusRule"}, o.GetKind(), "off by default")
		require.NotEqual(t, "kubechat-dashboard", o.GetName(), "off by default")
	}
	objs := mustRender(t, valuesOf(t, `
metrics:
  prometheusRule: {enabled: true, labels: {release: prom}}
  dashboard: {enabled: true}
`))
	lintOK(t, "monitoring", valuesOf(t, "metrics: {prometheusRule: {enabled: true}, dashboard: {enabled: true}}"))
	rule := find(t, objs, "PrometheusRule", "kubechat")
	require.Equal(t, "prom", rule.GetLabels()["release"])
	doc, err := os.ReadFile("../docs/metrics.md")
	require.NoError(t, err)
	groups, _, err := unstructured.NestedSlice(rule.Object, "spec", "groups")
	require.NoError(t, err)
	alerts := 0
	for _, g := range groups {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rule := r.(map[string]any)
			alerts++
			require.Contains(t, string(doc), "`"+rule["alert"].(string)+"`", "docs/metrics.md lists the alert")
			for _, m := range usedMetrics(rule["expr"].(string)) {
				require.True(t, slices.Contains(documented, m), "alert %s reads %s, which docs/metrics.md does not document", rule["alert"], m)
			}
		}
	}
	require.Equal(t, 5, alerts)

	cm := find(t, objs, "ConfigMap", "kubechat-dashboard")
	require.Equal(t, "1", cm.GetLabels()["grafana_dashboard"])
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	data := cm.Object["data"].(map[string]any)["kubechat.json"].(string)
	require.NoError(t, json.Unmarshal([]byte(data), &dash))
	require.NotEmpty(t, dash.Panels)
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, target := range p.Targets {
			for _, m := range usedMetrics(target.Expr) {
				require.True(t, slices.Contains(documented, m), "panel %q reads %s, which docs/metrics.md does not document", p.Title, m)
			}
		}
	}
}
