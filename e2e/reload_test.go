//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/chat/webhook"
)

// The agent reloads its config while it runs: when the files change (the
// kubelet's update of a mounted ConfigMap, or a write in place) and on
// SIGHUP. These tests run the binary, change its config and check that the
// new config takes effect without a restart, that an invalid one is
// refused, and that what did not change keeps running.

// configVolume writes config as the kubelet lays out a mounted ConfigMap
// (the data in a timestamped directory behind the ..data symlink) and
// returns the config file's path and the update that swaps ..data as the
// kubelet does.
func configVolume(t *testing.T, config string) (path string, update func(config string)) {
	t.Helper()
	dir := t.TempDir()
	n := 0
	update = func(config string) {
		n++
		data := filepath.Join(dir, fmt.Sprintf("..2026_12_01_10_00_%02d.%d", n, os.Getpid()))
		require.NoError(t, os.Mkdir(data, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(data, "kubechat.yaml"), []byte(config), 0o644))
		tmp := filepath.Join(dir, "..data_tmp")
		require.NoError(t, os.Symlink(filepath.Base(data), tmp))
		require.NoError(t, os.Rename(tmp, filepath.Join(dir, "..data")))
	}
	update(config)
	path = filepath.Join(dir, "kubechat.yaml")
	require.NoError(t, os.Symlink(filepath.Join("..data", "kubechat.yaml"), path))
	return path, update
}

// startAgentOn runs the agent on the config file at path.
func startAgentOn(t *testing.T, path string) *agent {
	t.Helper()
	return startAgentArgs(t, "run", "--config", path, "--kubeconfig", env.Kubeconfig())
}

// waitLogCount waits until the agent logged line n times.
func waitLogCount(t *testing.T, a *agent, line string, n int) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("%d × %s", n, line), func() error {
		if got := strings.Count(a.logs(), line); got < n {
			return fmt.Errorf("logged %d times", got)
		}
		return nil
	})
}

// stillTheSameProcess checks that the agent did not exit or restart.
func stillTheSameProcess(t *testing.T, a *agent, pid int) {
	t.Helper()
	select {
	case err := <-a.done:
		t.Fatalf("the agent exited (%v)", err)
	default:
	}
	require.Equal(t, pid, a.cmd.Process.Pid)
	require.Equal(t, 1, strings.Count(a.logs(), `msg="kubechat starting"`), "started once")
	require.NoError(t, a.cmd.Process.Signal(syscall.Signal(0)), "the process runs")
}

// routingConfig routes the ConfigMaps cm-* (source changes) to the
// channels of changesTo; mark-* always goes to first and ping-* to second,
// as barriers. Every channel is on one webhook platform.
func routingConfig(sinkURL, ns, changesTo string) string {
	first, second := "[marks]", "[pings]"
	switch changesTo {
	case "first":
		first = "[marks, changes]"
	case "second":
		second = "[pings, changes]"
	case "nope":
		second = "[pings, changes, nope]"
	}
	return agentBase(ns) + fmt.Sprintf(`platforms:
  - name: sink
    type: webhook
    settings:
      url: %[1]s
channels:
  - name: first
    platform: sink
    bindings:
      sources: %[3]s
  - name: second
    platform: sink
    bindings:
      sources: %[4]s
  - name: admin
    platform: sink
sources:
  - name: changes
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[2]s]
      resources:
        - type: v1/configmaps
          events: [create]
          name: "cm-.*"
  - name: marks
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[2]s]
      resources:
        - type: v1/configmaps
          events: [create]
          name: "mark-.*"
  - name: pings
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[2]s]
      resources:
        - type: v1/configmaps
          events: [create]
          name: "ping-.*"
reload:
  notifyChannel: admin
`, sinkURL, ns, first, second)
}

// titlesIn are the titles the sink got for channel, in order.
func titlesIn(s *sink, channel string) []string {
	var out []string
	for _, p := range s.matching(channel, "") {
		out = append(out, p.Title)
	}
	return out
}

// waitAlert waits up to within for the alert of ConfigMap ns/name in channel.
func waitAlert(t *testing.T, s *sink, channel, ns, name string, within time.Duration) {
	t.Helper()
	eventually(t, within, "ConfigMap "+name+" in "+channel, func() error {
		if len(s.matching(channel, "ConfigMap "+ns+"/"+name+" ")) == 0 {
			return fmt.Errorf("not yet: %v", titlesIn(s, channel))
		}
		return nil
	})
}

// TestReloadRoutesByTheNewBinding: the kubelet swaps the mounted config
// for one that routes the changes to another channel; the agent reloads
// it, the next change goes to the new channel within 5 s and nowhere
// else, and the process never restarted.
func TestReloadRoutesByTheNewBinding(t *testing.T) {
	const ns = "reload-route"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	s := newSink(t)
	path, update := configVolume(t, routingConfig(s.srv.URL, ns, "first"))
	a := startAgentOn(t, path)
	pid := a.cmd.Process.Pid
	waitReady(t, a)
	createCM(t, ns, "cm-1")
	waitAlert(t, s, "first", ns, "cm-1", 30*time.Second)

	update(routingConfig(s.srv.URL, ns, "second"))
	waitLogCount(t, a, `msg="config reloaded"`, 1)
	createCM(t, ns, "cm-2")
	waitAlert(t, s, "second", ns, "cm-2", 5*time.Second)
	// Barrier: a change routed to first after cm-2 was.
	createCM(t, ns, "mark-1")
	waitAlert(t, s, "first", ns, "mark-1", 30*time.Second)
	require.Equal(t, []string{"ConfigMap " + ns + "/cm-1 created", "ConfigMap " + ns + "/mark-1 created"}, titlesIn(s, "first"))
	require.Equal(t, []string{"ConfigMap " + ns + "/cm-2 created"}, titlesIn(s, "second"))

	stillTheSameProcess(t, a, pid)
	require.Equal(t, 1.0, metric(t, a, "kubechat_config_reloads_total", `result="success"`))
	require.Equal(t, 0.0, metric(t, a, "kubechat_config_reloads_total", `result="failure"`))
	require.Equal(t, 1.0, metric(t, a, "kubechat_config_last_reload_successful"))
	require.Contains(t, a.logs(), `sources_kept=changes,marks,pings`, "the watches ran on")
}

// TestReloadRefusesAnInvalidConfig: a config written in place with a
// binding to an unknown source is refused: the log names the file, line
// and field as check-config does, the metrics say so, the admin channel
// is told, and the changes keep going where they went.
func TestReloadRefusesAnInvalidConfig(t *testing.T) {
	const ns = "reload-invalid"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	s := newSink(t)
	path := filepath.Join(t.TempDir(), "kubechat.yaml")
	require.NoError(t, os.WriteFile(path, []byte(routingConfig(s.srv.URL, ns, "first")), 0o600))
	a := startAgentOn(t, path)
	pid := a.cmd.Process.Pid
	waitReady(t, a)
	createCM(t, ns, "cm-1")
	waitAlert(t, s, "first", ns, "cm-1", 30*time.Second)

	bad := routingConfig(s.srv.URL, ns, "nope")
	require.NoError(t, os.WriteFile(path, []byte(bad), 0o600))
	line := 0
	for i, l := range strings.Split(bad, "\n") {
		if strings.Contains(l, "nope") {
			line = i + 1
		}
	}
	problem := fmt.Sprintf("%s:%d: channels[1].bindings.sources[2]: unknown source", path, line)
	waitLogCount(t, a, `msg="config reload refused; the running config is kept"`, 1)
	require.Contains(t, a.logs(), problem)
	require.Equal(t, 1.0, metric(t, a, "kubechat_config_reloads_total", `result="failure"`))
	require.Equal(t, 0.0, metric(t, a, "kubechat_config_last_reload_successful"))
	eventually(t, 30*time.Second, "the notice in admin", func() error {
		for _, p := range s.matching("admin", "Config reload refused") {
			if strings.Contains(p.Text, problem) {
				return nil
			}
		}
		return fmt.Errorf("not yet: %v", titlesIn(s, "admin"))
	})

	createCM(t, ns, "cm-2")
	waitAlert(t, s, "first", ns, "cm-2", 30*time.Second)
	// Barrier: a change routed to second after cm-2 was.
	createCM(t, ns, "ping-1")
	waitAlert(t, s, "second", ns, "ping-1", 30*time.Second)
	require.Equal(t, []string{"ConfigMap " + ns + "/ping-1 created"}, titlesIn(s, "second"), "the old routing holds")
	require.Len(t, s.matching("admin", ""), 1, "told once")
	stillTheSameProcess(t, a, pid)
}

// TestReloadKeepsAnUnchangedSlackConnection: a reload that changes an
// alias and a channel's rate limit (so delivery hands over to a new
// pipeline) keeps the Slack platform, whose settings did not change: its
// Socket Mode connection is never reopened, the new alias answers
// through it, and no message is posted because of the reload.
func TestReloadKeepsAnUnchangedSlackConnection(t *testing.T) {
	const ns = "reload-slack"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	require.NoError(t, env.BindGroupToClusterRole(t.Context(), "e2e-slack-readers", "view"))
	srv := startSlack(t)
	cfg := slackConfig(srv.APIURL(), ns)
	path := filepath.Join(t.TempDir(), "kubechat.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	a := startAgentOn(t, path)
	pid := a.cmd.Process.Pid
	waitReady(t, a)
	waitConnected(t, srv, 1)

	changed := strings.Replace(cfg, "perSecond: 20", "perSecond: 30", 1) + "aliases:\n  cms: kubectl get configmaps\n"
	require.NotEqual(t, cfg, changed)
	require.NoError(t, os.WriteFile(path, []byte(changed), 0o600))
	waitLogCount(t, a, `msg="config reloaded"`, 1)

	// Barriers: the new alias answered over the connection, and an alert
	// delivered in #alerts after the reload.
	general := srv.ChannelID("general")
	ts, _, err := srv.Mention(general, "UALICE01", "cms")
	require.NoError(t, err)
	waitSlack(t, srv, "general", "the alias's reply", func(m slacktest.Message) bool {
		return m.ThreadTS == ts && strings.Contains(string(m.Blocks), "kube-root-ca.crt")
	})
	createCM(t, ns, "cm-after")
	waitSlack(t, srv, "alerts", "the alert after the reload", func(m slacktest.Message) bool {
		return strings.Contains(m.Text, "cm-after")
	})
	require.Equal(t, 1, srv.Connections(), "one Socket Mode connection, never reopened")
	require.Equal(t, 1, srv.Connected())
	require.Len(t, srv.Messages(srv.ChannelID("alerts")), 1, "nothing but the alert in #alerts")
	for _, m := range srv.Messages(general) {
		require.True(t, m.TS == ts || m.ThreadTS == ts, "nothing posted in #general but the reply: %+v", m)
	}
	stillTheSameProcess(t, a, pid)
	require.Contains(t, a.logs(), `platforms_kept=ops-slack`)
	require.Contains(t, a.logs(), `alerting_kept=false`, "delivery was handed over, Slack kept")
}

// signedSink is a webhook receiver that records which of its keys signed
// each request.
type signedSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys []string
	got  map[string]string // title -> key that signed it ("" for none)
}

func newSignedSink(t *testing.T, keys ...string) *signedSink {
	s := &signedSink{keys: keys, got: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		signer := ""
		for _, k := range s.keys {
			if webhook.Verify(k, r.Header, body) {
				signer = k
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.got[p.Title] = signer
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *signedSink) signer(title string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.got[title]
	return k, ok
}

// TestReloadOnSIGHUP: the webhook's signing key is a Secret file, which
// the file watch does not follow; after it is rotated, SIGHUP reloads, the
// platform whose secret changed is rebuilt, and the next alert is signed
// with the new key, by the same process.
func TestReloadOnSIGHUP(t *testing.T) {
	const ns = "reload-hup"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	const oldKey, newKey = "old-signing-key-0123456789", "new-signing-key-0123456789"
	s := newSignedSink(t, oldKey, newKey)
	dir := t.TempDir()
	secret := filepath.Join(dir, "signing-key")
	require.NoError(t, os.WriteFile(secret, []byte(oldKey+"\n"), 0o600))
	path := filepath.Join(dir, "kubechat.yaml")
	require.NoError(t, os.WriteFile(path, []byte(agentBase(ns)+fmt.Sprintf(`platforms:
  - name: sink
    type: webhook
    settings:
      url: %s
      signingSecret: {fromFile: %s}
channels:
  - name: changes
    platform: sink
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
`, s.srv.URL, secret, ns)), 0o600))
	a := startAgentOn(t, path)
	pid := a.cmd.Process.Pid
	waitReady(t, a)
	signedBy := func(name, key string) {
		t.Helper()
		title := "ConfigMap " + ns + "/" + name + " created"
		eventually(t, 30*time.Second, title, func() error {
			k, ok := s.signer(title)
			switch {
			case !ok:
				return fmt.Errorf("not yet")
			case k != key:
				return fmt.Errorf("signed with %q, want %q", k, key)
			}
			return nil
		})
	}
	createCM(t, ns, "cm-1")
	signedBy("cm-1", oldKey)

	require.NoError(t, os.WriteFile(secret, []byte(newKey+"\n"), 0o600))
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
	waitLogCount(t, a, `msg="config reloaded" trigger=signal`, 1)
	require.Contains(t, a.logs(), `platforms_restarted=sink`)
	createCM(t, ns, "cm-2")
	signedBy("cm-2", newKey)
	stillTheSameProcess(t, a, pid)
}

// TestReloadStandbyLeadsWithItsNewConfig: with two replicas, each reloads
// its own files. A standby whose config now routes the changes elsewhere
// changes nothing while it stands by; once the leader is gone, it leads by
// its new config.
func TestReloadStandbyLeadsWithItsNewConfig(t *testing.T) {
	const ns = "reload-ha"
	require.NoError(t, env.CreateNamespace(t.Context(), ns))
	t.Setenv("KUBECHAT_BUTTON_KEY", "e2e-button-key-0123456789abcdef")
	s := newSink(t)
	leads := func(a *agent) bool { return strings.Contains(a.logs(), "became the leader") }
	leaderPath := filepath.Join(t.TempDir(), "kubechat.yaml")
	require.NoError(t, os.WriteFile(leaderPath, []byte(haConfig(routingConfig(s.srv.URL, ns, "first"))), 0o600))
	leader := startAgentOn(t, leaderPath)
	eventually(t, 30*time.Second, "a leader", func() error {
		if !leads(leader) {
			return fmt.Errorf("none")
		}
		return nil
	})
	standbyPath := filepath.Join(t.TempDir(), "kubechat.yaml")
	require.NoError(t, os.WriteFile(standbyPath, []byte(haConfig(routingConfig(s.srv.URL, ns, "first"))), 0o600))
	standby := startAgentOn(t, standbyPath)
	waitReady(t, standby)

	require.NoError(t, os.WriteFile(standbyPath, []byte(haConfig(routingConfig(s.srv.URL, ns, "second"))), 0o600))
	waitLogCount(t, standby, `msg="config reloaded"`, 1)
	createCM(t, ns, "cm-1")
	waitAlert(t, s, "first", ns, "cm-1", 30*time.Second)
	require.False(t, leads(standby))

	// A new leader replays what happened since the checkpoint the old one
	// wrote when it stopped (2 s back, in whole seconds), routed by its own
	// config: cm-1 must be older than that, or it would go to second too.
	time.Sleep(4 * time.Second)
	require.NoError(t, leader.cmd.Process.Signal(syscall.SIGTERM))
	eventually(t, 60*time.Second, "the standby takes over", func() error {
		if !leads(standby) {
			return fmt.Errorf("still standing by")
		}
		return nil
	})
	createCM(t, ns, "cm-2")
	waitAlert(t, s, "second", ns, "cm-2", 30*time.Second)
	// Barrier: a change routed to first after cm-2 was.
	createCM(t, ns, "mark-1")
	waitAlert(t, s, "first", ns, "mark-1", 30*time.Second)
	require.Equal(t, []string{"ConfigMap " + ns + "/cm-1 created", "ConfigMap " + ns + "/mark-1 created"}, titlesIn(s, "first"))
	require.Equal(t, []string{"ConfigMap " + ns + "/cm-2 created"}, titlesIn(s, "second"))
}
