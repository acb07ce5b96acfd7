package chart_test

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubechat/kubechat/internal/app"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/fleet/hub"
)

// hubValues run a fleet's hub against a NATS cluster of 3 from the
// upstream chart, with the hub's seed from a Secret.
const hubValues = `
mode: hub
fleet:
  credentialsSecret: kubechat-fleet
env:
  - name: SLACK_BOT_TOKEN
    valueFrom: {secretKeyRef: {name: kubechat-slack, key: botToken}}
  - name: SLACK_APP_TOKEN
    valueFrom: {secretKeyRef: {name: kubechat-slack, key: appToken}}
config:
  cluster:
    name: hub
  platforms:
    - name: ops-slack
      type: slack
      settings:
        botToken: ${SLACK_BOT_TOKEN}
        appToken: ${SLACK_APP_TOKEN}
  channels:
    - name: k8s-alerts
      platform: ops-slack
      clusters: [prod, staging]
      defaultCluster: prod
  fleet:
    nats:
      url: nats://nats:4222
      nkeySeedFile: /etc/kubechat/fleet/hub.nk
    replicas: 3
    clusters:
      - name: prod
      - name: staging
`

// TestHubMode: mode hub runs "kubechat hub" with no cluster access (no
// RBAC, no API token, no button key), the fleet's credentials mounted,
// and a config the hub accepts.
func TestHubMode(t *testing.T) {
	vals := valuesOf(t, hubValues)
	lintOK(t, "hub", vals)
	objs := mustRender(t, vals)
	for _, o := range objs {
		require.NotContains(t, []string{"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}, o.GetKind(), "a hub has no cluster access: %s %s", o.GetKind(), o.GetName())
		require.NotEqual(t, "kubechat-buttons", o.GetName(), "a hub signs no buttons")
	}
	d := find(t, objs, "Deployment", "kubechat")
	pod, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
	require.Equal(t, false, pod["automountServiceAccountToken"])
	sa := find(t, objs, "ServiceAccount", "kubechat")
	require.Equal(t, false, sa.Object["automountServiceAccountToken"])
	c := pod["containers"].([]any)[0].(map[string]any)
	require.Equal(t, []any{"hub", "--config", "/etc/kubechat/kubechat.yaml"}, c["args"])
	for _, e := range c["env"].([]any) {
		require.NotEqual(t, "KUBECHAT_BUTTON_KEY", e.(map[string]any)["name"])
	}
	require.Contains(t, c["volumeMounts"], map[string]any{"name": "fleet", "mountPath": "/etc/kubechat/fleet", "readOnly": true})
	require.Contains(t, fmt.Sprint(pod["volumes"]), "map[name:fleet secret:map[defaultMode:256 secretName:kubechat-fleet]]", "the seeds, readable by the agent's user only")

	t.Setenv("SLACK_BOT_TOKEN", "xoxb-test")
	t.Setenv("SLACK_APP_TOKEN", "xapp-test")
	cm := find(t, objs, "ConfigMap", "kubechat-config")
	text, _, _ := unstructured.NestedString(cm.Object, "data", "kubechat.yaml")
	cfg, err := config.Parse(app.Known(), config.File{Name: "hub.yaml", Data: []byte(text)})
	require.NoError(t, err, text)
	require.False(t, cfg.HA.LeaderElection, "the hub elects its leader through NATS, not a Lease")
	_, err = hub.New(cfg, slog.New(slog.DiscardHandler), hub.Options{Metrics: prometheus.NewRegistry()})
	require.NoError(t, err, "the hub accepts the rendered config")
}

// TestAgentMountsFleetCredentials: an agent of a fleet gets its seed
// mounted where its platform of type hub reads it.
func TestAgentMountsFleetCredentials(t *testing.T) {
	objs := mustRender(t, valuesOf(t, "fleet:\n  credentialsSecret: kubechat-fleet\n"))
	d := find(t, objs, "Deployment", "kubechat")
	c, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	require.Equal(t, "run", c[0].(map[string]any)["args"].([]any)[0])
	require.Contains(t, c[0].(map[string]any)["volumeMounts"], map[string]any{"name": "fleet", "mountPath": "/etc/kubechat/fleet", "readOnly": true})
}
