package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat/webhook"
	"github.com/kubechat/kubechat/internal/config"
)

// receiver records what a webhook platform posts.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []webhook.Payload
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p webhook.Payload
		if err := json.NewDecoder(req.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, p)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// titles are the titles posted to channel, in order.
func (r *receiver) titles(channel string) []string {
	var out []string
	for _, p := range r.posted(channel) {
		out = append(out, p.Title)
	}
	return out
}

// posted are the payloads posted to channel, in order.
func (r *receiver) posted(channel string) []webhook.Payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []webhook.Payload
	for _, p := range r.got {
		if p.Channel == channel {
			out = append(out, p)
		}
	}
	return out
}

func (r *receiver) wait(t *testing.T, channel, title string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, got := range r.titles(channel) {
			if strings.Contains(got, title) {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "%q in %s: %v", title, channel, r.titles(channel))
}

// reloadConfig is an agent without a cluster: two Alertmanager receivers,
// "routed" bound to channel (a or b) and "marks" to a, every channel on one
// webhook; a web chat; reload notices to admin.
func reloadConfig(url string) string {
	return fmt.Sprintf(`cluster:
  name: test
log:
  format: text
http:
  listen: 127.0.0.1:0
platforms:
  - name: sink
    type: webhook
    settings:
      url: %s
  - name: web
    type: webchat
    settings:
      auth: token
      token: ${TEST_WEBCHAT_TOKEN}
      channels: [ops]
channels:
  - name: a
    platform: sink
    bindings:
      sources: [marks]
    rateLimit: {perSecond: 1000, burst: 1000}
  - name: b
    platform: sink
    rateLimit: {perSecond: 1000, burst: 1000}
  - name: admin
    platform: sink
  - name: ops
    platform: web
sources:
  - name: routed
    type: alertmanager
    alertmanager:
      bearerToken: ${TEST_AM_TOKEN}
  - name: marks
    type: alertmanager
    alertmanager:
      bearerToken: ${TEST_AM_TOKEN}
reload:
  notifyChannel: admin
`, url)
}

// bind adds source routed to channel's bindings in a reloadConfig.
func bind(cfg, channel string) string {
	if channel == "a" {
		return strings.Replace(cfg, "sources: [marks]", "sources: [marks, routed]", 1)
	}
	return strings.Replace(cfg, "  - name: b\n    platform: sink\n", "  - name: b\n    platform: sink\n    bindings:\n      sources: [routed]\n", 1)
}

// fire posts a firing alert named name to the Alertmanager receiver source.
func fire(t *testing.T, a *App, source, name string) {
	t.Helper()
	body := fmt.Sprintf(`{"version":"4","groupKey":%q,"status":"firing","receiver":"kubechat",
"groupLabels":{"alertname":%[1]q},"commonLabels":{"alertname":%[1]q},"commonAnnotations":{},"externalURL":"",
"alerts":[{"status":"firing","labels":{"alertname":%[1]q},"annotations":{},"startsAt":"2026-11-23T10:00:00Z","fingerprint":%[1]q}]}`, name)
	require.Eventually(t, func() bool {
		req, err := http.NewRequest(http.MethodPost, "http://"+a.HTTPAddr()+"/alertmanager/"+source, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer am-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond, "the alert %s was not taken", name)
}

// startApp runs an agent on the config at path until the test ends. The
// test reloads by hand: the files are not polled.
func startApp(t *testing.T, path string) *App {
	t.Helper()
	cfg, err := Load(path)
	require.NoError(t, err)
	a, err := New(cfg, slog.New(slog.DiscardHandler), Options{ConfigFiles: []string{path}})
	require.NoError(t, err)
	a.poll = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return a
}

// TestReloadSwapsRoutingAndKeepsTheRest: a reload that moves a source to
// another channel routes the next alert there and nowhere else; the web
// chat, whose settings did not change, keeps its platform and its open
// event stream, which carries the answer to a command typed after the
// reload; the reload is counted.
func TestReloadSwapsRoutingAndKeepsTheRest(t *testing.T) {
	t.Setenv("TEST_WEBCHAT_TOKEN", "agent-token-0123456789")
	t.Setenv("TEST_AM_TOKEN", "am-token")
	sink := newReceiver(t)
	path := filepath.Join(t.TempDir(), "kubechat.yaml")
	base := reloadConfig(sink.srv.URL)
	require.NoError(t, os.WriteFile(path, []byte(bind(base, "a")), 0o600))
	a := startApp(t, path)

	fire(t, a, "routed", "Before")
	sink.wait(t, "a", "Before")
	events := openStream(t, a)
	web := a.current().byName["web"]

	require.NoError(t, os.WriteFile(path, []byte(bind(base, "b")), 0o600))
	require.NoError(t, a.reload(t.Context(), "test"))
	require.Same(t, web, a.current().byName["web"], "the web chat was kept")
	require.Equal(t, 1.0, testutil.ToFloat64(a.reloads.total.WithLabelValues(reloadSuccess)))
	require.Equal(t, 1.0, testutil.ToFloat64(a.reloads.ok))

	fire(t, a, "routed", "After")
	sink.wait(t, "b", "After")
	// Barrier: an alert queued to a after After was routed.
	fire(t, a, "marks", "Mark")
	sink.wait(t, "a", "Mark")
	require.Equal(t, []string{"[FIRING:1] Before", "[FIRING:1] Mark"}, sink.titles("a"))

	postWeb(t, a, "@kubechat help")
	waitStream(t, events, "kubechat help")
}

// TestReloadRefusesAnInvalidConfig: a config that does not load, or that
// changes what only a restart applies, is refused with positioned
// problems; the running config keeps routing, and the refusal is counted
// and told to reload.notifyChannel once.
func TestReloadRefusesAnInvalidConfig(t *testing.T) {
	t.Setenv("TEST_WEBCHAT_TOKEN", "agent-token-0123456789")
	t.Setenv("TEST_AM_TOKEN", "am-token")
	sink := newReceiver(t)
	path := filepath.Join(t.TempDir(), "kubechat.yaml")
	good := bind(reloadConfig(sink.srv.URL), "a")
	require.NoError(t, os.WriteFile(path, []byte(good), 0o600))
	a := startApp(t, path)
	fire(t, a, "routed", "Before")
	sink.wait(t, "a", "Before")
	running := a.current()

	bad := strings.Replace(good, "sources: [marks, routed]", "sources: [marks, nope]", 1)
	require.NoError(t, os.WriteFile(path, []byte(bad), 0o600))
	err := a.reload(t.Context(), "test")
	require.ErrorContains(t, err, path+`:22: channels[0].bindings.sources[1]: unknown source "nope" (known: routed, marks)`)
	require.Same(t, running, a.current(), "the running config is kept")
	require.Equal(t, 1.0, testutil.ToFloat64(a.reloads.total.WithLabelValues(reloadFailure)))
	require.Equal(t, 0.0, testutil.ToFloat64(a.reloads.ok))
	sink.wait(t, "admin", "Config reload refused")
	// Asked again with the same files, the channel is not told twice.
	require.Error(t, a.reload(t.Context(), "test"))

	restart := strings.Replace(good, "listen: 127.0.0.1:0", "listen: 127.0.0.1:1", 1)
	require.NoError(t, os.WriteFile(path, []byte(restart), 0o600))
	require.ErrorContains(t, a.reload(t.Context(), "test"), path+":6: http.listen: changed, but only a restart applies it")
	require.Same(t, running, a.current())

	fire(t, a, "routed", "After")
	sink.wait(t, "a", "After")
	// Barrier: a last refusal's notice, queued after any repeat.
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(good, "format: text", "format: json", 1)), 0o600))
	require.Error(t, a.reload(t.Context(), "test"))
	require.Eventually(t, func() bool {
		notices := sink.posted("admin")
		return len(notices) > 0 && strings.Contains(notices[len(notices)-1].Text, "log.format")
	}, 10*time.Second, 10*time.Millisecond)
	notices := sink.posted("admin")
	require.Len(t, notices, 3, "one notice for each content refused: %v", sink.titles("admin"))
	require.Contains(t, notices[0].Text, `unknown source "nope"`)
	require.Contains(t, notices[1].Text, "http.listen")
}

func openStream(t *testing.T, a *App) <-chan string {
	t.Helper()
	var stream *http.Response
	require.Eventually(t, func() bool {
		req, err := http.NewRequest(http.MethodGet, "http://"+a.HTTPAddr()+"/chat/web/api/events", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer agent-token-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return false
		}
		stream = resp
		return true
	}, 10*time.Second, 20*time.Millisecond)
	t.Cleanup(func() { stream.Body.Close() })
	events := make(chan string, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- data
			}
		}
	}()
	return events
}

func postWeb(t *testing.T, a *App, text string) {
	t.Helper()
	body, err := json.Marshal(map[string]string{"channel": "ops", "text": text})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		req, err := http.NewRequest(http.MethodPost, "http://"+a.HTTPAddr()+"/chat/web/api/messages", strings.NewReader(string(body)))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer agent-token-0123456789")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusAccepted
	}, 10*time.Second, 20*time.Millisecond)
}

// waitStream waits until the stream carries a message whose title is title.
func waitStream(t *testing.T, events <-chan string, title string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case data, ok := <-events:
			require.True(t, ok, "the stream ended")
			var m struct{ Title string }
			require.NoError(t, json.Unmarshal([]byte(data), &m))
			if m.Title == title {
				return
			}
		case <-timeout:
			t.Fatalf("no %q on the stream", title)
		}
	}
}

// TestPlatformPrint: a platform counts as changed when its name, type or
// settings change, or a secret file its settings read; not for comments or
// the order of keys.
func TestPlatformPrint(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("one"), 0o600))
	print := func(name, typ, settings string) string {
		raw, err := config.RawFromYAML(settings)
		require.NoError(t, err)
		return platformPrint(config.Platform{Name: name, Type: typ, Settings: raw})
	}
	base := print("ops", "webhook", "url: http://x\nsigningSecret: {fromFile: "+secret+"}\n")
	require.NotEmpty(t, base)
	require.Equal(t, base, print("ops", "webhook", "# a comment\nsigningSecret:\n  fromFile: "+secret+"\nurl: http://x # here\n"))
	require.NotEqual(t, base, print("ops", "webhook", "url: http://y\nsigningSecret: {fromFile: "+secret+"}\n"))
	require.NotEqual(t, base, print("ops2", "webhook", "url: http://x\nsigningSecret: {fromFile: "+secret+"}\n"))
	require.NotEqual(t, base, print("ops", "slack", "url: http://x\nsigningSecret: {fromFile: "+secret+"}\n"))
	require.NoError(t, os.WriteFile(secret, []byte("two"), 0o600))
	require.NotEqual(t, base, print("ops", "webhook", "url: http://x\nsigningSecret: {fromFile: "+secret+"}\n"), "a rotated secret is a change")
}

// TestReloadRefusesWhatOnlyTheBuildFinds: a config that passes the
// offline checks but cannot be built here (a kubernetes source, and no
// cluster) is refused as well, and leaves nothing of itself behind: no
// health of the platform it added, no queues in the metrics.
func TestReloadRefusesWhatOnlyTheBuildFinds(t *testing.T) {
	t.Setenv("TEST_WEBCHAT_TOKEN", "agent-token-0123456789")
	t.Setenv("TEST_AM_TOKEN", "am-token")
	sink := newReceiver(t)
	path := filepath.Join(t.TempDir(), "kubechat.yaml")
	good := bind(reloadConfig(sink.srv.URL), "a")
	require.NoError(t, os.WriteFile(path, []byte(good), 0o600))
	a := startApp(t, path)
	running := a.current()

	bad := strings.NewReplacer(
		"channels:\n", "  - name: extra\n    type: webhook\n    settings:\n      url: "+sink.srv.URL+"\nchannels:\n  - name: more\n    platform: extra\n",
		"sources:\n", "sources:\n  - name: pods\n    type: kubernetes\n    kubernetes:\n      resources:\n        - type: v1/pods\n          events: [create]\n",
	).Replace(good)
	require.NoError(t, checkBuild(mustLoad(t, path, bad)), "the offline checks pass")
	require.ErrorContains(t, a.reload(t.Context(), "test"), `source "pods": a kubernetes source needs a cluster connection`)
	require.Same(t, running, a.current())
	require.NotContains(t, componentsUp(t, a), "delivery/extra")
	require.NotContains(t, queues(t, a), "more", "the pipeline that was built is out of the metrics")

	require.NoError(t, os.WriteFile(path, []byte(bind(reloadConfig(sink.srv.URL), "b")), 0o600))
	require.NoError(t, a.reload(t.Context(), "test"))
	fire(t, a, "routed", "After")
	sink.wait(t, "b", "After")
}

// mustLoad writes text to path and loads it.
func mustLoad(t *testing.T, path, text string) *config.Config {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	cfg, err := Load(path)
	require.NoError(t, err)
	return cfg
}

// componentsUp lists the components kubechat_component_up reports.
func componentsUp(t *testing.T, a *App) []string {
	return labelValues(t, a, "kubechat_component_up", "component")
}

// queues lists the channels kubechat_queue_depth reports.
func queues(t *testing.T, a *App) []string {
	return labelValues(t, a, "kubechat_queue_depth", "channel")
}

func labelValues(t *testing.T, a *App, metric, label string) []string {
	t.Helper()
	mfs, err := a.registry.Gather()
	require.NoError(t, err)
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					out = append(out, l.GetValue())
				}
			}
		}
	}
	return out
}

// TestReloadsUnderLoadLoseNothing: alerts keep coming and commands keep
// being typed while the config is reloaded back and forth between two
// routings; every alert arrives once, in one of the two channels, and
// every command is answered.
func TestReloadsUnderLoadLoseNothing(t *testing.T) {
	t.Setenv("TEST_WEBCHAT_TOKEN", "agent-token-0123456789")
	t.Setenv("TEST_AM_TOKEN", "am-token")
	sink := newReceiver(t)
	path := filepath.Join(t.TempDir(), "kubechat.yaml")
	base := reloadConfig(sink.srv.URL)
	require.NoError(t, os.WriteFile(path, []byte(bind(base, "a")), 0o600))
	a := startApp(t, path)
	events := openStream(t, a)

	const alerts, commands, reloads = 30, 5, 6
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range alerts {
			fire(t, a, "routed", fmt.Sprintf("A%02d", i))
		}
	})
	wg.Go(func() {
		for range commands {
			postWeb(t, a, "@kubechat help")
		}
	})
	for i := range reloads {
		require.NoError(t, os.WriteFile(path, []byte(bind(base, []string{"b", "a"}[i%2])), 0o600))
		require.NoError(t, a.reload(t.Context(), "test"), "reload %d", i)
	}
	wg.Wait()
	seen := func() map[string]int {
		n := map[string]int{}
		for _, title := range append(sink.titles("a"), sink.titles("b")...) {
			n[title]++
		}
		return n
	}
	require.Eventually(t, func() bool {
		n := seen()
		for i := range alerts {
			if n[fmt.Sprintf("[FIRING:1] A%02d", i)] == 0 {
				return false
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond, "every alert arrives: %v", seen())
	// Barriers in both channels, queued after any repeat: the last reload
	// (to b) replays what is pending before Last; Mark goes to a.
	require.NoError(t, os.WriteFile(path, []byte(bind(base, "b")), 0o600))
	require.NoError(t, a.reload(t.Context(), "test"))
	fire(t, a, "routed", "Last")
	sink.wait(t, "b", "Last")
	fire(t, a, "marks", "Mark")
	sink.wait(t, "a", "Mark")
	n := seen()
	for i := range alerts {
		require.Equal(t, 1, n[fmt.Sprintf("[FIRING:1] A%02d", i)], "A%02d once: %v", i, n)
	}
	for range commands {
		waitStream(t, events, "kubechat help")
	}
	require.Equal(t, float64(reloads+1), testutil.ToFloat64(a.reloads.total.WithLabelValues(reloadSuccess)))
}
