package alerting

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

// templateCorpus are events of every shape the sources emit.
var templateCorpus = []event.Event{
	{Source: "pods", Cluster: "prod", Type: event.Create, Level: event.Info, Object: event.Object{Kind: "Pod", Namespace: "web", Name: "web-1"}},
	{Source: "nodes", Cluster: "prod", Type: event.Delete, Level: event.Warn, Object: event.Object{Kind: "Node", Name: "node-1"}},
	{Source: "warnings", Cluster: "prod", Type: event.Error, Level: event.Warn, Reason: "BackOff", Message: "Back-off restarting failed container",
		Count: 7, Object: event.Object{Kind: "Pod", Namespace: "web", Name: "web-1"}},
	{Source: "warnings", Cluster: "prod", Type: event.Error, Level: event.Warn, Reason: "BackOff", Count: 1,
		Object: event.Object{Kind: "Pod", Namespace: "web", Name: "web-1"}},
	{Source: "deploys", Cluster: "prod", Type: event.Update, Level: event.Info, Object: event.Object{Kind: "Deployment", Namespace: "web", Name: "web"},
		Fields: []event.Field{{Name: "spec.replicas", Value: "2 → 3"}, {Name: "spec.template.spec.containers[0].image", Value: "web:1 → web:2"}}},
	{Source: "pods", Cluster: "prod", Type: event.Error, Level: event.Critical, Transition: event.Failing, Reason: "CrashLoopBackOff",
		Message: "back-off 5m0s restarting", Object: event.Object{Kind: "Pod", Namespace: "web", Name: "web-1"}, Time: time.Unix(1e9, 0)},
	{Source: "am", Cluster: "prod", Type: event.Error, Level: event.Critical, Transition: event.Failing, Reason: "firing", Group: "g",
		Headline: "[FIRING:2] HighLatency", Message: "• p99 above 1s", Object: event.Object{Kind: "Alert", Namespace: "web", Name: "HighLatency"},
		Labels: map[string]string{"alertname": "HighLatency", "severity": "critical"}, Fields: []event.Field{{Name: "severity", Value: "critical"}}},
	{Source: "argocd", Cluster: "prod", Type: event.Error, Level: event.Critical, Transition: event.Failing, Reason: "Degraded", Message: "health Degraded",
		Object: event.Object{Kind: "Application", Namespace: "argocd", Name: "shop"}, Buttons: []event.Button{{Label: "Sync", Command: []string{"argocd", "app", "sync", "shop"}}}},
	{Source: "helm", Cluster: "", Type: event.Error, Level: "", Transition: event.Failing, Reason: "failed", Message: "upgrade failed: timed out",
		Object: event.Object{Kind: "HelmRelease", Namespace: "web", Name: "shop"}},
}

// TestDefaultTemplateIsRender: the built-in message written as a template
// renders exactly what Render renders, for every shape of event.
func TestDefaultTemplateIsRender(t *testing.T) {
	for _, ev := range templateCorpus {
		got, err := RenderTemplate(DefaultTemplate, ev)
		require.NoError(t, err)
		require.Equal(t, Render(ev), got, ev.Title())
	}
}

// TestCustomTemplate: a template's parts replace the built-in ones; empty
// fields and buttons are left out; a template that fails on an event
// falls back to the built-in message.
func TestCustomTemplate(t *testing.T) {
	tmpl := config.Template{
		Name:    "compact",
		Title:   `{{ upper .Object.Kind }} {{ .Object.Name }}{{ with .Reason }}: {{ . }}{{ end }}`,
		Text:    "{{ truncate 12 .Message }}",
		Context: `{{ .Cluster }} · {{ default "no team" (index .ObjectLabels "team") }}`,
		Fields: []config.TemplateField{
			{Name: "Where", Value: "{{ .Object.Namespace }}"},
			{Name: "Severity", Value: `{{ index .Labels "severity" }}`},
		},
		Buttons: []config.TemplateButton{{Label: "Runbook", URL: "https://runbooks.example.com/{{ lower .Reason }}"}},
	}
	ev := templateCorpus[2]
	ev.ObjectLabels = map[string]string{"team": "web-team"}
	m, err := RenderTemplate(tmpl, ev)
	require.NoError(t, err)
	require.Equal(t, chat.Message{
		Title: "POD web-1: BackOff", Level: chat.LevelWarning,
		Sections: []chat.Section{
			{Text: "Back-off re…", Fields: []chat.Field{{Name: "Where", Value: "web"}}},
			{Buttons: []chat.Button{{Label: "Runbook", URL: "https://runbooks.example.com/backoff"}}},
		},
		Context: "prod · web-team",
	}, m)

	broken := config.Template{Name: "broken", Title: `{{ index .Fields 5 }}`}
	p := &Pipeline{log: slog.New(slog.DiscardHandler), sourceTemplates: map[string]*messageTemplate{}}
	mt, err := compileTemplate(broken)
	require.NoError(t, err)
	p.sourceTemplates["warnings"] = mt
	require.Equal(t, Render(ev), p.baseMessage(ev, &sender{}), "a failing template posts the built-in message")
}
