//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/llm/llmtest"
)

// documented are the metrics docs/metrics.md lists, with their labels.
func documented(t *testing.T) map[string][]string {
	t.Helper()
	doc, err := os.ReadFile("../docs/metrics.md")
	require.NoError(t, err)
	out := map[string][]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(kubechat_[a-z_]+)` \\| [a-z]+ \\| ([^|]*)\\|").FindAllStringSubmatch(string(doc), -1) {
		var labels []string
		for _, l := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(m[2], -1) {
			labels = append(labels, l[1])
		}
		out[m[1]] = labels
	}
	require.NotEmpty(t, out)
	return out
}

// series is one scraped sample: its labels and value.
type series struct {
	labels map[string]string
	value  float64
}

// scrape parses the agent's /metrics into samples by metric name.
func scrape(t *testing.T, a *agent) map[string][]series {
	t.Helper()
	code, body, err := a.get("/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	out := map[string][]series{}
	line := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	label := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
	for _, l := range strings.Split(body, "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		s := series{labels: map[string]string{}}
		for _, lm := range label.FindAllStringSubmatch(m[2], -1) {
			s.labels[lm[1]] = lm[2]
		}
		s.value, _ = strconv.ParseFloat(m[3], 64)
		out[m[1]] = append(out[m[1]], s)
	}
	return out
}

// sum adds the samples of name whose labels include want.
func sum(samples map[string][]series, name string, want map[string]string) float64 {
	total := 0.0
next:
	for _, s := range samples[name] {
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// TestMetricsAsDocumented runs a scenario (alerts to a channel whose
// receiver fails once, alerts to one that refuses them, commands that run,
// are unknown and are denied) and checks every metric docs/metrics.md
// documents: it is served, with exactly the labels listed, and the
// scenario's counts show in it.
func TestMetricsAsDocumented(t *testing.T) {
	const ns = "metrics"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	require.NoError(t, env.BindGroupToClusterRole(t.Context(), "e2e-metrics-readers", "view"))
	t.Setenv("E2E_WEBCHAT_TOKEN", webToken)
	var calls atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "try again", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(flaky.Close)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such channel", http.StatusNotFound)
	}))
	t.Cleanup(refusing.Close)
	// A model that keeps calling a tool the channel may not run: the one
	// call is refused, and the budget of one tool call stops the answer.
	model := llmtest.New(t)
	model.Respond(func(_ int, req llmtest.Request) llmtest.Reply {
		if len(req.Tools) == 0 {
			return llmtest.Reply{Text: "Nothing found.", PromptTokens: 10, CompletionTokens: 3}
		}
		return llmtest.Reply{ToolCalls: []llmtest.Call{{Name: "helm_status", Arguments: `{"release":"web","namespace":"metrics"}`}}, PromptTokens: 10, CompletionTokens: 3}
	})
	a := startAgent(t, agentBase(ns)+fmt.Sprintf(`platforms:
  - name: web
    type: webchat
    settings:
      auth: token
      token: ${E2E_WEBCHAT_TOKEN}
      channels: [ops]
  - name: flaky
    type: webhook
    settings: {url: %q}
  - name: refusing
    type: webhook
    settings: {url: %q}
channels:
  - name: ops
    platform: web
    bindings:
      executors: [kubectl, ask]
    identity:
      user: e2e-metrics-user
      groups: [e2e-metrics-readers]
  - name: changes
    platform: flaky
    bindings:
      sources: [changes]
  - name: void
    platform: refusing
    bindings:
      sources: [changes]
sources:
  - name: changes
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%s]
      resources:
        - type: v1/configmaps
          events: [create]
inhibit:
  rules:
    - name: workload-down
      sourceMatchers: [alertname="WorkloadDown"]
      targetMatchers: [namespace="%[3]s"]
      equal: [namespace]
executors:
  - name: kubectl
    type: kubectl
    policy:
      namespaces: [%[3]s]
      defaultNamespace: %[3]s
  - name: ask
    type: ai
    settings:
      provider: {baseURL: %[4]q, model: m}
      budgets: {toolCalls: 1}
`, flaky.URL, refusing.URL, ns, model.BaseURL()))
	waitReady(t, a)
	web := openWebchat(t, a.addr)
	for _, name := range []string{"one", "two"} {
		createCM(t, ns, name)
	}
	for _, text := range []string{"@kubechat kubectl get configmaps", "@kubechat frobnicate", "@kubechat kubectl get pods -n kube-system", "@kubechat ask what fails?"} {
		web.post(t, "messages", map[string]string{"channel": "ops", "text": text})
	}
	var m map[string][]series
	eventually(t, 60*time.Second, "the scenario in the metrics", func() error {
		m = scrape(t, a)
		switch {
		case sum(m, "kubechat_notifications_total", map[string]string{"platform": "flaky", "channel": "changes", "result": "delivered"}) < 2:
			return fmt.Errorf("not both delivered to changes")
		case sum(m, "kubechat_notifications_total", map[string]string{"platform": "refusing", "channel": "void", "result": "dead_letter"}) < 2:
			return fmt.Errorf("not both dead-lettered in void")
		case sum(m, "kubechat_commands_total", nil) < 4:
			return fmt.Errorf("not four commands")
		}
		return nil
	})

	for name, labels := range documented(t) {
		samples := m[name]
		if len(samples) == 0 {
			samples = m[name+"_count"] // a histogram
		}
		require.NotEmpty(t, samples, "%s is documented but not served", name)
		for _, s := range samples {
			var got []string
			for l := range s.labels {
				if l != "le" {
					got = append(got, l)
				}
			}
			require.ElementsMatch(t, labels, got, "%s: labels", name)
		}
	}
	require.Equal(t, 2.0, sum(m, "kubechat_events_received_total", map[string]string{"source": "changes"}))
	require.GreaterOrEqual(t, sum(m, "kubechat_delivery_retries_total", map[string]string{"platform": "flaky", "reason": "error"}), 1.0)
	require.GreaterOrEqual(t, sum(m, "kubechat_delivery_duration_seconds_count", map[string]string{"platform": "flaky"}), 2.0)
	require.Equal(t, 1.0, sum(m, "kubechat_commands_total", map[string]string{"executor": "kubectl", "result": "ok"}))
	require.Equal(t, 1.0, sum(m, "kubechat_commands_total", map[string]string{"executor": "none", "result": "unknown"}))
	require.Equal(t, 1.0, sum(m, "kubechat_commands_total", map[string]string{"executor": "kubectl", "result": "denied_policy"}))
	require.Equal(t, 4.0, sum(m, "kubechat_command_duration_seconds_count", nil))
	require.Equal(t, 1.0, sum(m, "kubechat_ai_questions_total", map[string]string{"executor": "ask", "result": "stopped"}))
	require.Equal(t, 1.0, sum(m, "kubechat_ai_refusals_total", map[string]string{"executor": "ask", "reason": "policy"}))
	require.Equal(t, 1.0, sum(m, "kubechat_ai_tool_calls_total", map[string]string{"executor": "ask", "tool": "helm_status", "result": "refused"}))
	require.Equal(t, 1.0, sum(m, "kubechat_ai_budget_stops_total", map[string]string{"executor": "ask", "budget": "tool_calls"}))
	require.Equal(t, 20.0, sum(m, "kubechat_ai_tokens_total", map[string]string{"executor": "ask", "kind": "prompt"}))
	require.Equal(t, 1.0, sum(m, "kubechat_leader", nil))
	require.Equal(t, 1.0, sum(m, "kubechat_source_synced", map[string]string{"source": "changes"}))
	require.Equal(t, 1.0, sum(m, "kubechat_platform_up", map[string]string{"platform": "flaky"}))
	require.Zero(t, sum(m, "kubechat_outbox_unsaved_total", nil))
	require.Len(t, m["kubechat_build_info"], 1)
	require.Equal(t, "e2e", m["kubechat_build_info"][0].labels["cluster"])
	require.True(t, strings.HasPrefix(m["kubechat_build_info"][0].labels["goversion"], "go"))
}
