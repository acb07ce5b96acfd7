package argocd

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/commands"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/source/kubernetes"
)

// recorder is a chat platform that keeps each message by id, with its
// versions: a Post with Replace is an edit.
type recorder struct {
	mu       sync.Mutex
	versions map[string][]chat.Message
	order    []string
	channel  map[string]string
	changed  chan struct{}
}

func newRecorder() *recorder {
	return &recorder{versions: map[string][]chat.Message{}, channel: map[string]string{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) Name() string { return "chat" }
func (r *recorder) Listen(ctx context.Context, _ chat.Handler) error {
	<-ctx.Done()
	return nil
}

func (r *recorder) Post(_ context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := strconv.Itoa(len(r.order) + 1)
	if m.Replace != nil {
		id = m.Replace.ID
	} else {
		r.order = append(r.order, id)
		r.channel[id] = to.ID
	}
	r.versions[id] = append(r.versions[id], m)
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return chat.MessageRef{Platform: "chat", Channel: to.ID, ID: id}, nil
}

// messages are the posted messages, each as its latest version.
func (r *recorder) messages() []chat.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []chat.Message
	for _, id := range r.order {
		v := r.versions[id]
		out = append(out, v[len(v)-1])
	}
	return out
}

// first is the id of the first message posted to channel.
func (r *recorder) first(channel string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range r.order {
		if r.channel[id] == channel {
			return id
		}
	}
	return ""
}

func (r *recorder) edits(id string) []chat.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.versions[id])
}

// waitFor waits until cond holds for the posted messages.
func (r *recorder) waitFor(t *testing.T, what string, cond func([]chat.Message) bool) []chat.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		if ms := r.messages(); cond(ms) {
			return ms
		}
		select {
		case <-r.changed:
		case <-ctx.Done():
			t.Fatalf("waiting for %s; posted: %v", what, r.messages())
		}
	}
}

const alertConfig = `cluster: {name: test-cluster, namespace: kubechat}
platforms: [{name: chat, type: log}]
channels:
  - name: gitops
    id: gitops
    platform: chat
    bindings: {sources: [argocd], executors: [argocd]}
    identity: {user: olga, groups: [argo-operators]}
  - name: viewers
    id: viewers
    platform: chat
    bindings: {sources: [argocd], executors: [argocd]}
    identity: {user: victor, groups: [argo-viewers]}
executors:
  - name: argocd
    type: argocd
    settings: {url: "https://argocd.example.com"}
    policy:
      verbs: [app get, app diff, app history, app sync, app refresh]
      namespaces: [argocd]
sources:
  - name: argocd
    type: kubernetes
    kubernetes:
      resources: [{type: argoproj.io/v1alpha1/applications, events: [error]}]
      argocd: {url: "https://argocd.example.com", outOfSyncAfter: 1h}
`

// TestAlertToSync: an Application that turns Degraded is one alert, with
// its revision, status, failing resources and buttons; it is edited to
// Resolved when the Application is Healthy again. The alert's Sync button,
// confirmed, starts a sync whose reply is edited as the operation runs,
// until its end. A channel that cannot sync (its identity is a viewer, so
// Kubernetes RBAC refuses the patch) is told so.
func TestAlertToSync(t *testing.T) {
	apps := world(t)
	newApp(t, apps, "shop", nil)
	ctx := t.Context()
	cfg, err := config.Parse(config.Known{PlatformTypes: []string{"log"}, ExecutorTypes: []string{"argocd"}}, config.File{Name: "alert.yaml", Data: []byte(alertConfig)})
	require.NoError(t, err)
	rec := newRecorder()
	log := slog.New(slog.DiscardHandler)
	pipe, err := alerting.New(cfg, map[string]chat.Platform{"chat": rec}, alerting.Options{}, prometheus.NewRegistry(), log)
	require.NoError(t, err)
	exec := newExecutor(t, "url: https://argocd.example.com")
	handler, err := commands.New(cfg, commands.Options{Executors: map[string]executor.Executor{"argocd": exec}}, prometheus.NewRegistry(), log)
	require.NoError(t, err)
	pipe.SetActions(handler)
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	synced := make(chan struct{})
	src, err := kubernetes.New(cfg.Sources[0], "test-cluster", dyn, log, kubernetes.Options{OnSynced: func() { close(synced) }})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() { _ = pipe.Start(runCtx) })
	wg.Go(func() { _ = src.Start(runCtx, pipe.Emit) })
	<-synced

	// Healthy → Degraded: one alert per channel.
	setStatus(t, apps, "shop", func(st map[string]any) {
		st["health"] = map[string]any{"status": "Degraded", "message": "Deployment web/shop has 0 of 2 replicas available", "lastTransitionTime": now()}
		st["resources"] = []any{
			map[string]any{"kind": "Service", "namespace": "web", "name": "shop", "status": "Synced", "health": map[string]any{"status": "Healthy"}},
			map[string]any{"group": "apps", "kind": "Deployment", "namespace": "web", "name": "shop", "status": "Synced",
				"health": map[string]any{"status": "Degraded", "message": "Deployment \"shop\" exceeded its progress deadline"}},
		}
	})
	rec.waitFor(t, "the alerts", func(ms []chat.Message) bool { return len(ms) == 2 })
	alertID := rec.first("gitops")
	alert := rec.edits(alertID)[0]
	require.Equal(t, "Application argocd/shop is failing (Degraded)", alert.Title)
	text := alert.PlainText()
	for _, want := range []string{"Deployment web/shop has 0 of 2 replicas available",
		"• Deployment web/shop: Degraded, Synced: Deployment \"shop\" exceeded its progress deadline",
		"Revision: " + rev2, "Sync: Synced", "Health: Degraded", "Project: default"} {
		require.Contains(t, text, want)
	}
	require.NotContains(t, text, "Service web/shop", "only the failing resources are listed")
	buttons := alert.Sections[len(alert.Sections)-1].Buttons
	var labels []string
	for _, b := range buttons {
		labels = append(labels, b.Label)
	}
	require.Equal(t, []string{"Sync", "Diff", "Refresh", "History", "View in Argo CD"}, labels)
	require.Equal(t, "https://argocd.example.com/applications/argocd/shop", buttons[4].URL)

	// Degraded → Progressing → Healthy: the same message, edited to Resolved.
	setStatus(t, apps, "shop", func(st map[string]any) {
		st["health"] = map[string]any{"status": "Progressing", "lastTransitionTime": now()}
	})
	setStatus(t, apps, "shop", func(st map[string]any) {
		st["health"] = map[string]any{"status": "Healthy", "lastTransitionTime": now()}
	})
	ms := rec.waitFor(t, "the resolution", func(ms []chat.Message) bool {
		return len(ms) >= 2 && strings.HasPrefix(ms[0].Title, "Resolved:") && strings.HasPrefix(ms[1].Title, "Resolved:")
	})
	require.Len(t, ms, 2, "one message per channel, edited")
	require.Equal(t, "Resolved: Application argocd/shop (was Degraded)", ms[0].Title)
	require.Len(t, rec.edits(alertID), 2, "posted once, edited once")

	// The Sync button: confirm, then the reply follows the operation.
	d := chat.NewDispatcher(rec, handler, 0, log)
	dctx, stop := context.WithCancel(ctx)
	defer d.Wait()
	defer stop() // first: a reply still following an operation stops
	click := func(channel, id string) {
		d.Dispatch(dctx, chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: channel, ID: channel}, UserID: "U1", UserName: "alice",
			ButtonID: id, Thread: chat.MessageRef{Platform: "chat", Channel: channel, ID: rec.first(channel)}})
	}
	n := len(rec.messages())
	click("gitops", buttons[0].ID)
	ms = rec.waitFor(t, "the confirmation", func(ms []chat.Message) bool { return len(ms) == n+1 })
	confirm := ms[n]
	require.Equal(t, "Confirm: argocd app sync shop -n argocd", confirm.Title)
	click("gitops", confirm.Sections[len(confirm.Sections)-1].Buttons[0].ID)
	ms = rec.waitFor(t, "the sync's reply", func(ms []chat.Message) bool { return len(ms) == n+2 })
	replyID := strconv.Itoa(n + 2)
	require.Contains(t, ms[n+1].PlainText(), "Sync of application argocd/shop to main requested")
	require.JSONEq(t, `{"sync":{"revision":"main","source":{"path":"apps/shop","repoURL":"https://github.com/acme/fleet.git","targetRevision":"main"},"syncOptions":["CreateNamespace=true"],"syncStrategy":{"hook":{}}},"initiatedBy":{"username":"alice (chat via kubechat)"},"retry":{"limit":2}}`,
		operationJSON(t, apps, "shop"))

	// The application controller runs it, then it fails: each step edits the reply.
	start(t, apps, "shop")
	rec.waitFor(t, "the running operation", func(ms []chat.Message) bool {
		return strings.Contains(ms[n+1].PlainText(), "Phase:         Running")
	})
	finish(t, apps, "shop", "Failed", "one or more objects failed to apply")
	ms = rec.waitFor(t, "the operation's end", func(ms []chat.Message) bool {
		return strings.Contains(ms[n+1].PlainText(), "Phase:         Failed")
	})
	final := ms[n+1]
	require.Equal(t, chat.LevelError, final.Level)
	require.Contains(t, final.PlainText(), "The operation ended Failed: one or more objects failed to apply")
	require.Contains(t, final.PlainText(), "Deployment  web        shop  SyncFailed")
	require.GreaterOrEqual(t, len(rec.edits(replyID)), 3, "requested, running, failed: one message edited")

	// The viewers' channel got the same alert; its identity cannot sync.
	vbuttons := rec.edits(rec.first("viewers"))[0].Sections
	vsync := vbuttons[len(vbuttons)-1].Buttons[0]
	require.Equal(t, "Sync", vsync.Label, "the policy allows sync; RBAC decides")
	n = len(rec.messages())
	click("viewers", vsync.ID)
	ms = rec.waitFor(t, "the viewers' confirmation", func(ms []chat.Message) bool { return len(ms) == n+1 })
	click("viewers", ms[n].Sections[len(ms[n].Sections)-1].Buttons[0].ID)
	ms = rec.waitFor(t, "the refusal", func(ms []chat.Message) bool { return len(ms) == n+2 })
	require.Equal(t, "Denied by Kubernetes RBAC", ms[n+1].Title)
	require.Contains(t, ms[n+1].PlainText(), `User "victor" cannot patch resource "applications"`)

	// Deleting the Application resolves nothing new (no alert is open),
	// and a sentinel Application's alert arrives alone.
	require.NoError(t, apps.Namespace(appNS).Delete(ctx, "shop", metav1.DeleteOptions{}))
	newApp(t, apps, "sentinel", nil)
	n = len(rec.messages())
	setStatus(t, apps, "sentinel", func(st map[string]any) {
		st["health"] = map[string]any{"status": "Missing", "lastTransitionTime": now()}
	})
	ms = rec.waitFor(t, "the sentinel", func(ms []chat.Message) bool { return len(ms) >= n+2 })
	require.Len(t, ms, n+2)
	require.Equal(t, "Application argocd/sentinel is failing (Missing)", ms[n].Title)
}

// TestOutOfSyncAlertsOnlyOnceItLasts: OutOfSync alone is not an alert
// until outOfSyncAfter passed; a sync failure is one at once; an
// ApplicationSet's generation error is one too.
func TestOutOfSyncAlertsOnlyOnceItLasts(t *testing.T) {
	apps := world(t)
	newApp(t, apps, "drift-long", nil)
	newApp(t, apps, "drift-short", nil)
	newApp(t, apps, "sentinel-2", nil)
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	var mu sync.Mutex
	var got []event.Event
	events := func(name string) []event.Event {
		mu.Lock()
		defer mu.Unlock()
		var out []event.Event
		for _, ev := range got {
			if ev.Object.Name == name && ev.Transition == event.Failing {
				out = append(out, ev)
			}
		}
		return out
	}
	startSource := func(grace string) {
		cfg := config.Source{Name: "argo-" + grace, Type: "kubernetes", Kubernetes: &config.KubernetesSource{
			Resources: []config.Resource{{Type: "argoproj.io/v1alpha1/applications", Name: map[string]string{"1h": "drift-long|sentinel-2", "1ms": "drift-short"}[grace], Events: []string{"error"}}},
			ArgoCD:    config.ArgoCDAlerts{OutOfSyncAfter: config.Duration(map[string]time.Duration{"1h": time.Hour, "1ms": time.Millisecond}[grace])},
		}}
		synced := make(chan struct{})
		src, err := kubernetes.New(cfg, "test-cluster", dyn, slog.New(slog.DiscardHandler), kubernetes.Options{Workers: 1, OnSynced: func() { close(synced) }})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = src.Start(ctx, func(_ context.Context, ev event.Event) { mu.Lock(); got = append(got, ev); mu.Unlock() })
		}()
		t.Cleanup(func() { cancel(); <-done })
		<-synced
	}
	startSource("1h")
	startSource("1ms")
	outOfSync := func(name string) {
		setStatus(t, apps, name, func(st map[string]any) {
			st["sync"] = map[string]any{"status": "OutOfSync", "revision": rev2}
			st["resources"] = []any{map[string]any{"kind": "ConfigMap", "namespace": "web", "name": "settings", "status": "OutOfSync",
				"health": map[string]any{"status": "Healthy"}}}
		})
	}
	outOfSync("drift-short")
	require.Eventually(t, func() bool { return len(events("drift-short")) == 1 }, 30*time.Second, 10*time.Millisecond)
	ev := events("drift-short")[0]
	require.Equal(t, "OutOfSync", ev.Reason)
	require.Contains(t, ev.Message, "out of sync with main\n• ConfigMap web/settings: Healthy, OutOfSync")
	require.Len(t, ev.Buttons, 4, "no URL configured: no View in Argo CD")

	// Within the grace period: nothing, however often the status is
	// rewritten; the sentinel, handled after it by the same worker, is the barrier.
	outOfSync("drift-long")
	setStatus(t, apps, "drift-long", func(st map[string]any) { st["reconciledAt"] = "2026-12-06T00:00:00Z" })
	setStatus(t, apps, "sentinel-2", func(st map[string]any) {
		st["operationState"] = map[string]any{"operation": map[string]any{"sync": map[string]any{"revision": "main"}},
			"phase": "Failed", "message": "one or more objects failed to apply", "startedAt": now(), "finishedAt": now()}
		st["sync"] = map[string]any{"status": "OutOfSync", "revision": rev2}
	})
	require.Eventually(t, func() bool { return len(events("sentinel-2")) == 1 }, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, "SyncFailed", events("sentinel-2")[0].Reason)
	require.Contains(t, events("sentinel-2")[0].Message, "sync failed: one or more objects failed to apply")
	require.Empty(t, events("drift-long"), "OutOfSync for less than outOfSyncAfter is not news")
}
