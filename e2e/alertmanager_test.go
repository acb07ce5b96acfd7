//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/testenv"
)

// alertmanagerProc is a running Alertmanager built by hack/testbin.sh.
type alertmanagerProc struct {
	url string
	cmd *exec.Cmd
	log bytes.Buffer
}

// startAlertmanager runs the real Alertmanager with one webhook receiver
// pointing at webhookURL, authenticated with token, and short group timers.
func startAlertmanager(t *testing.T, webhookURL, token string) *alertmanagerProc {
	t.Helper()
	bin, err := testenv.BinDir()
	require.NoError(t, err)
	bin = filepath.Join(bin, "alertmanager")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("alertmanager is missing from the test binaries: run \"make testbin\" (%v)", err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: kubechat
  group_by: [alertname, namespace]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: kubechat
    webhook_configs:
      - url: %s
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: %s
`, webhookURL, token)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(cfg), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	am := &alertmanagerProc{url: "http://" + addr}
	am.cmd = exec.Command(bin, "--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr,
		"--cluster.listen-address=", "--log.level=debug")
	am.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	am.cmd.Stdout, am.cmd.Stderr = &am.log, &am.log
	require.NoError(t, am.cmd.Start())
	t.Cleanup(func() {
		_ = am.cmd.Process.Kill()
		_ = am.cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", am.log.String())
		}
	})
	eventually(t, 30*time.Second, "alertmanager ready", func() error {
		resp, err := http.Get(am.url + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	return am
}

// post sends alerts to Alertmanager's API, as Prometheus does.
func (am *alertmanagerProc) post(t *testing.T, alerts ...map[string]any) {
	t.Helper()
	body, err := json.Marshal(alerts)
	require.NoError(t, err)
	resp, err := http.Post(am.url+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

const amToken = "e2e-alertmanager-token"

func alertmanagerConfig(apiURL, ns string) string {
	return agentBase(ns) + slackPlatform(apiURL) + `channels:
  - name: alerts
    platform: ops-slack
    bindings:
      sources: [prometheus]
      matchers: ['severity=~"critical|warning"']
  - name: general
    platform: ops-slack
    bindings:
      sources: [prometheus]
      matchers: ['team="nobody"']
sources:
  - name: prometheus
    type: alertmanager
    alertmanager:
      bearerToken: ${E2E_AM_TOKEN}
`
}

// TestAlertmanagerFiresAndResolves: a real Alertmanager whose webhook
// receiver points at the agent fires an alert, which becomes one Slack
// message (only in the channel whose matchers it matches), and resolves it,
// which edits that message; a request without the token gets 401.
func TestAlertmanagerFiresAndResolves(t *testing.T) {
	const ns = "am-e2e"
	require.NoError(t, env.CreateNamespace(t.Context(), ns)) // the agent's state lives there
	srv := startSlack(t)
	t.Setenv("E2E_AM_TOKEN", amToken)
	a := startAgent(t, alertmanagerConfig(srv.APIURL(), ns))
	waitReady(t, a)
	waitConnected(t, srv, 1)
	hook := "http://" + a.addr + "/alertmanager/prometheus"

	resp, err := http.Post(hook, "application/json", strings.NewReader(`{"version":"4"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no token, no entry")

	am := startAlertmanager(t, hook, amToken)
	labels := map[string]string{"alertname": "HighErrorRate", "namespace": ns, "severity": "critical", "service": "web"}
	start := time.Now().UTC().Add(-time.Minute)
	am.post(t, map[string]any{"labels": labels, "annotations": map[string]string{"summary": "web answers 5xx"},
		"startsAt": start.Format(time.RFC3339), "generatorURL": "http://prometheus.example/graph"})

	fired := waitSlack(t, srv, "alerts", "the firing alert", func(m slacktest.Message) bool {
		return strings.Contains(m.Text, "[FIRING:1] HighErrorRate")
	})
	require.Contains(t, string(fired.Blocks), "web answers 5xx")
	require.Contains(t, string(fired.Blocks), "cluster: e2e")

	am.post(t, map[string]any{"labels": labels, "startsAt": start.Format(time.RFC3339),
		"endsAt": time.Now().UTC().Add(-time.Second).Format(time.RFC3339)})
	resolved := waitSlack(t, srv, "alerts", "the alert edited into resolved", func(m slacktest.Message) bool {
		return m.TS == fired.TS && strings.Contains(m.Text, "Resolved")
	})
	require.GreaterOrEqual(t, resolved.Edits, 1)
	require.Len(t, srv.Messages(srv.ChannelID("alerts")), 1, "one message for the alert, edited on resolution")
	require.Empty(t, srv.Messages(srv.ChannelID("general")), "the other channel's matchers do not match")
}
