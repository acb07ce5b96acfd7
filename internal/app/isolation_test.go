package app

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/plugins"
)

// TestPodIsolationKeepsSecretsInTheAgent: an executor whose settings name a
// secret cannot run in pods, whose argv would carry them.
func TestPodIsolationKeepsSecretsInTheAgent(t *testing.T) {
	t.Setenv("APP_TEST_TOKEN", "not-for-pods")
	cfg, err := config.Parse(Known(), config.File{Name: "iso.yaml", Data: []byte(`cluster: {name: x}
platforms: [{name: c, type: log}]
channels:
  - {name: a, platform: c, bindings: {executors: [helm]}, identity: {serviceAccount: ns/sa}}
executors:
  - type: helm
    isolation: pod
    settings: {cacheDir: "${APP_TEST_TOKEN}"}
`)})
	require.NoError(t, err)
	execs, err := plugins.Build(cfg, executor.Deps{})
	require.NoError(t, err)
	_, _, err = podExecutors(cfg, execs, nil, "img")
	require.ErrorContains(t, err, `executor "helm": isolation pod: its settings reference secrets, which never leave the agent`)
}
