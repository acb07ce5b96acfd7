package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTemplatesValidatedAtLoad: a template that does not parse (here a
// function outside the safe set, on its own second line) is refused at
// load, naming the config's file and line and the template's line; so is
// a reference to a template that does not exist.
func TestTemplatesValidatedAtLoad(t *testing.T) {
	const text = `cluster:
  name: dev
platforms:
  - name: chat
    type: log
channels:
  - name: ops
    platform: chat
    template: nope
sources:
  - name: pods
    type: kubernetes
    template: compact
    kubernetes:
      resources:
        - type: v1/pods
templates:
  - name: compact
    title: "{{ .Object.Name }}"
    text: |
      {{ .Message }}
      {{ env "HOME" }}
    fields:
      - name: Reason
        value: "{{ .Reason "
`
	_, err := Parse(Known{PlatformTypes: []string{"log"}}, File{Name: "t.yaml", Data: []byte(text)})
	require.Error(t, err)
	require.ErrorContains(t, err, `t.yaml:20: templates[0].text: template line 2: function "env" not defined`)
	require.ErrorContains(t, err, `t.yaml:25: templates[0].fields[0].value: template line 1: unclosed action`)
	require.ErrorContains(t, err, `t.yaml:9: channels[0].template: unknown template "nope"`)

	ok := `cluster:
  name: dev
platforms:
  - name: chat
    type: log
channels:
  - name: ops
    platform: chat
    template: compact
templates:
  - name: compact
    title: "{{ upper .Object.Kind }} {{ .Object.Name }}"
    buttons:
      - label: Runbook
        url: "https://runbooks.example.com/{{ lower .Reason }}"
`
	cfg, err := Parse(Known{PlatformTypes: []string{"log"}}, File{Name: "ok.yaml", Data: []byte(ok)})
	require.NoError(t, err)
	require.Equal(t, "compact", cfg.Channels[0].Template)
}
