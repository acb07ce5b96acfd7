//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/testenv"
)

const webToken = "e2e-webchat-token-0123456789"

// webchatConfig is an agent with the web chat (channel ops: commands as a
// user who may read everything, and the Alertmanager source's alerts).
func webchatConfig(ns string) string {
	return agentBase(ns) + `platforms:
  - name: web
    type: webchat
    settings:
      auth: token
      token: ${E2E_WEBCHAT_TOKEN}
      channels: [ops]
channels:
  - name: ops
    platform: web
    bindings:
      executors: [kubectl]
      sources: [am]
    identity:
      user: e2e-web-user
      groups: [e2e-web-readers]
sources:
  - name: am
    type: alertmanager
    alertmanager:
      bearerToken: ${E2E_AM_TOKEN}
executors:
  - name: kubectl
    type: kubectl
    policy:
      verbs: ["*"]
      namespaces: ["*"]
`
}

// webMessage is what the web chat's event stream carries.
type webMessage struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Sections []struct {
		Code    string `json:"code"`
		Text    string `json:"text"`
		Buttons []struct {
			Label  string `json:"label"`
			Action string `json:"action"`
		} `json:"buttons"`
	} `json:"sections"`
}

func (m webMessage) text() string {
	var b strings.Builder
	b.WriteString(m.Title + "\n")
	for _, s := range m.Sections {
		b.WriteString(s.Text + "\n" + s.Code + "\n")
	}
	return b.String()
}

func (m webMessage) button(label string) string {
	for _, s := range m.Sections {
		for _, b := range s.Buttons {
			if b.Label == label {
				return b.Action
			}
		}
	}
	return ""
}

// webchat reads the web chat's event stream from one agent's address.
type webchat struct {
	addr string
	mu   sync.Mutex
	msgs []webMessage
}

func openWebchat(t *testing.T, addr string) *webchat {
	t.Helper()
	w := &webchat{addr: addr}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/chat/web/api/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+webToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var m webMessage
			if json.Unmarshal([]byte(data), &m) == nil && m.ID != "" {
				w.mu.Lock()
				w.msgs = append(w.msgs, m)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *webchat) post(t *testing.T, path string, body any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, "http://"+w.addr+"/chat/web/api/"+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+webToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, "POST %s", path)
}

// wait returns the newest message whose text has want, other than those
// whose ids are in not.
func (w *webchat) wait(t *testing.T, want string, not ...string) webMessage {
	t.Helper()
	var found webMessage
	eventually(t, 30*time.Second, "a web chat message with "+want, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		for i := len(w.msgs) - 1; i >= 0; i-- {
			if strings.Contains(w.msgs[i].text(), want) && !slices.Contains(not, w.msgs[i].ID) {
				found = w.msgs[i]
				return nil
			}
		}
		return fmt.Errorf("%d messages, none matches", len(w.msgs))
	})
	return found
}

// TestStandbyHandsInboundToTheLeader: with two replicas, web chat commands
// and clicks, and Alertmanager webhooks sent to the standby are handled
// by the leader; a button posted before the leader is restarted runs once
// after it, and is refused the second time.
func TestStandbyHandsInboundToTheLeader(t *testing.T) {
	const ns = "inbound"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	t.Setenv("KUBECHAT_BUTTON_KEY", "e2e-button-key-0123456789abcdef")
	t.Setenv("E2E_WEBCHAT_TOKEN", webToken)
	t.Setenv("E2E_AM_TOKEN", "e2e-am-token")
	require.NoError(t, env.BindGroupToClusterRole(t.Context(), "e2e-web-readers", "view"))
	cfg := haConfig(webchatConfig(ns))
	leads := func(a *agent) bool { return strings.Contains(a.logs(), "became the leader") }
	first := startAgent(t, cfg)
	eventually(t, 30*time.Second, "a leader", func() error {
		if !leads(first) {
			return fmt.Errorf("none")
		}
		return nil
	})
	second := startAgent(t, cfg)
	waitReady(t, second)
	require.False(t, leads(second))

	// Through the standby: the stream, a command, its button.
	chat := openWebchat(t, second.addr)
	chat.post(t, "messages", map[string]string{"channel": "ops", "text": "kubectl get ns " + ns})
	reply := chat.wait(t, ns+"   Active")
	again := reply.button("Run again")
	require.NotEmpty(t, again)
	chat.post(t, "actions", map[string]string{"channel": "ops", "message": reply.ID, "action": again})
	next := chat.wait(t, ns+"   Active", reply.ID) // the click ran the command again

	// An Alertmanager webhook sent to the standby.
	alert := map[string]any{"version": "4", "groupKey": "{}:{alertname=\"Inbound\"}", "status": "firing", "receiver": "kubechat",
		"groupLabels": map[string]string{"alertname": "Inbound"}, "commonLabels": map[string]string{"alertname": "Inbound"},
		"alerts": []map[string]any{{"status": "firing", "labels": map[string]string{"alertname": "Inbound"}, "fingerprint": "f1",
			"startsAt": time.Now().UTC().Format(time.RFC3339)}}}
	body, err := json.Marshal(alert)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, "http://"+second.addr+"/alertmanager/am", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer e2e-am-token")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	chat.wait(t, "[FIRING:1] Inbound")

	// A button from before the leader restarted, clicked on the new leader.
	reply = next
	again = reply.button("Run again")
	stop(t, first)
	eventually(t, 30*time.Second, "the standby leads", func() error {
		if !leads(second) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	chat = openWebchat(t, second.addr)
	chat.post(t, "actions", map[string]string{"channel": "ops", "message": reply.ID, "action": again})
	chat.wait(t, ns+"   Active", reply.ID)
	chat.post(t, "actions", map[string]string{"channel": "ops", "message": reply.ID, "action": again})
	chat.wait(t, "this button was already used")
}

// TestWatchesResumeAfterAPIServerOutage: the API server of a cluster of
// its own is killed for 40 s; a change made 5 s after it is ready again is
// alerted within 10 s, and the gap is logged.
func TestWatchesResumeAfterAPIServerOutage(t *testing.T) {
	ctx := t.Context()
	own, err := testenv.Start(ctx, testenv.Options{Nodes: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = own.Stop() })
	const ns = "outage"
	require.NoError(t, own.CreateNamespace(ctx, ns))
	s := newSink(t)
	cfgPath := t.TempDir() + "/kubechat.yaml"
	require.NoError(t, os.WriteFile(cfgPath, []byte(alertConfig(s.srv.URL, ns)), 0o600))
	a := startAgentArgs(t, "run", "--config", cfgPath, "--kubeconfig", own.Kubeconfig())
	waitReady(t, a)
	cm := func(name string) {
		_, err := own.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	cm("before")
	eventually(t, 30*time.Second, "an alert before the outage", func() error {
		if len(s.matching("changes", "ConfigMap "+ns+"/before ")) == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	require.NoError(t, own.KillAPIServer())
	time.Sleep(40 * time.Second)
	require.NoError(t, own.StartAPIServer(ctx))
	time.Sleep(5 * time.Second)
	made := time.Now()
	cm("after")
	eventually(t, 10*time.Second, "the alert of a change after the outage", func() error {
		if len(s.matching("changes", "ConfigMap "+ns+"/after ")) == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	t.Logf("alerted %s after the change", time.Since(made).Round(100*time.Millisecond))
	require.Contains(t, a.logs(), "the API server is back; relisting and replaying the gap")
	require.Len(t, s.matching("changes", "ConfigMap "+ns+"/before "), 1, "nothing before the outage is repeated")
}
