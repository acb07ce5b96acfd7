package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/platforms"
	"github.com/kubechat/kubechat/internal/commands"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/source"
	"github.com/kubechat/kubechat/internal/source/alertmanager"
	githubsource "github.com/kubechat/kubechat/internal/source/github"
	k8ssource "github.com/kubechat/kubechat/internal/source/kubernetes"
	"github.com/kubechat/kubechat/plugins"
	"github.com/kubechat/kubechat/plugins/alerts"
)

// generation is what one config builds: its platforms, the alerting
// pipeline, the command handler (with the executors, channels, policies,
// users, aliases and actions), the sources and the inbound routes. A reload
// builds the next generation from the previous one, keeping every
// platform, source and pipeline whose config did not change, so that they
// run on untouched.
type generation struct {
	cfg       *config.Config
	platforms []chat.Platform // in config order
	byName    map[string]chat.Platform
	// prints identify each platform's type and settings (platformPrint);
	// receivers are the HTTP handlers of those that take webhooks, kept
	// with their platform.
	prints    map[string]string
	receivers map[string]http.Handler
	alerts    *alerting.Pipeline
	commands  *commands.Handler
	sources   []source.Source
	inbound   http.Handler
	// podNamespaces are where command pods may run.
	podNamespaces []string
}

// source returns the generation's source named name.
func (g *generation) source(name string) (source.Source, bool) {
	for _, s := range g.sources {
		if s.Name() == name {
			return s, true
		}
	}
	return nil, false
}

// build builds the generation of cfg. With prev (a reload), every platform
// whose name, type and settings are unchanged, every source whose config is
// unchanged, and the pipeline when nothing it routes by changed, are
// prev's own, still running. Nothing dials out.
func (a *App) build(cfg *config.Config, prev *generation) (*generation, error) {
	g := &generation{cfg: cfg, byName: map[string]chat.Platform{}, prints: map[string]string{}, receivers: map[string]http.Handler{}}
	built := false
	defer func() {
		if !built && prev != nil {
			a.discard(g, prev)
		}
	}()
	var errs []error
	for i, pc := range cfg.Platforms {
		fp := platformPrint(pc)
		p, kept := prev.platform(pc.Name, fp)
		if !kept {
			var err error
			if p, err = platforms.Factories[pc.Type].New(pc.Name, pc.Settings, a.deps); err != nil {
				errs = append(errs, fmt.Errorf("platforms[%d]: %w", i, err))
				continue
			}
		}
		g.platforms = append(g.platforms, p)
		g.byName[pc.Name], g.prints[pc.Name] = p, fp
		if r, ok := p.(chat.HTTPReceiver); ok {
			if kept {
				g.receivers[pc.Name] = prev.receivers[pc.Name]
			} else {
				g.receivers[pc.Name] = r.HTTPHandler()
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	execs, err := plugins.Build(cfg, executor.Deps{Log: a.log, RESTConfig: a.restConfig, Cluster: cfg.Cluster.Name})
	if err != nil {
		return nil, err
	}
	copts := commands.Options{Executors: execs, Health: a.health, State: a.chatState, KubernetesVersion: a.k8sVersion,
		Buttons: a.buttons, Metrics: a.commandMetrics, Platforms: g.byName}
	if copts.PodExecutors, g.podNamespaces, err = podExecutors(cfg, execs, a.runner, os.Getenv(ImageEnv)); err != nil {
		return nil, err
	}
	if len(copts.PodExecutors) > 0 && a.runner == nil {
		return nil, errNoCluster
	}
	if prev != nil && sameRouting(prev, g) {
		g.alerts = prev.alerts
	} else {
		g.alerts, err = alerting.New(cfg, g.byName, alerting.Options{State: a.chatState, Health: a.health, Outbox: a.outbox,
			Backoff: chat.Backoff{Deadline: cfg.Delivery.Deadline.D(), Max: cfg.Delivery.MaxBackoff.D()}, Metrics: a.alertMetrics, Decisions: a.decisions}, a.registry, a.log)
		if err != nil {
			return nil, err
		}
	}
	copts.Alerts = g.alerts
	alerts.Attach(execs, g.alerts)
	if g.commands, err = commands.New(cfg, copts, a.registry, a.log); err != nil {
		return nil, err
	}
	for _, sc := range cfg.Sources {
		s, err := a.buildSource(cfg, sc, prev)
		if err != nil {
			return nil, err
		}
		g.sources = append(g.sources, s)
	}
	mux := http.NewServeMux()
	for _, s := range g.sources {
		switch hook := s.(type) {
		case *alertmanager.Source:
			mux.Handle(hook.Path(), a.inbound(hook))
		case *githubsource.Source:
			mux.Handle(hook.Path(), a.inbound(hook))
		}
	}
	for _, p := range g.platforms {
		if h, ok := g.receivers[p.Name()]; ok {
			prefix := chat.HTTPPrefix(p)
			mux.Handle(prefix+"/", a.inbound(http.StripPrefix(prefix, h)))
		}
	}
	g.inbound = mux
	built = true
	return g, nil
}

// platform returns prev's platform name if its print is fp.
func (prev *generation) platform(name, fp string) (chat.Platform, bool) {
	if prev == nil || fp == "" || prev.prints[name] != fp {
		return nil, false
	}
	p, ok := prev.byName[name]
	return p, ok
}

// discard undoes what a build that failed left behind: its pipeline's
// place in the metrics and the delivery health of platforms prev does not have.
func (a *App) discard(g, prev *generation) {
	if g.alerts != nil && g.alerts != prev.alerts {
		g.alerts.Close()
	}
	for _, pc := range g.cfg.Platforms {
		if _, ok := prev.byName[pc.Name]; !ok {
			a.health.Unregister("delivery/" + pc.Name)
		}
	}
}

// platformPrint identifies a platform's name, type and settings: the
// settings as data (comments and layout do not count), with each secret
// file they read ({fromFile: path}) standing for its content, so that a
// rotated secret counts as a change. "" means it could not be read: never
// the same.
func platformPrint(pc config.Platform) string {
	text, err := yaml.Marshal(pc.Settings)
	if err != nil {
		return ""
	}
	var v any
	if err := yaml.Unmarshal(text, &v); err != nil {
		return ""
	}
	canon, err := yaml.Marshal(withFileContents(v))
	if err != nil {
		return ""
	}
	h := sha256.Sum256([]byte(pc.Name + "\x00" + pc.Type + "\x00" + string(canon)))
	return hex.EncodeToString(h[:])
}

// withFileContents replaces every {fromFile: path} in v with the hash of
// the file's content (or the error reading it).
func withFileContents(v any) any {
	switch t := v.(type) {
	case map[string]any:
		if path, ok := t["fromFile"].(string); ok && len(t) == 1 {
			b, err := os.ReadFile(path)
			if err != nil {
				return map[string]any{"fromFile": path, "error": err.Error()}
			}
			h := sha256.Sum256(b)
			return map[string]any{"fromFile": path, "sha256": hex.EncodeToString(h[:])}
		}
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = withFileContents(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = withFileContents(e)
		}
		return out
	default:
		return v
	}
}

// sameRouting reports whether g's pipeline would route as prev's does:
// the same channels (names, platforms, ids, bound sources, matchers, rate
// limits, templates) on the very same platform objects, with the same
// delivery settings, inhibit rules and templates. Then g keeps prev's
// pipeline, and its queues run on.
func sameRouting(prev, g *generation) bool {
	if prev.cfg.Delivery != g.cfg.Delivery || len(prev.cfg.Channels) != len(g.cfg.Channels) ||
		!reflect.DeepEqual(prev.cfg.Inhibit, g.cfg.Inhibit) || !reflect.DeepEqual(prev.cfg.Templates, g.cfg.Templates) ||
		!maps.Equal(sourceTemplates(prev.cfg), sourceTemplates(g.cfg)) {
		return false
	}
	type routing struct {
		Name, Platform, ID, Template string
		Sources, Matchers            []string
		RateLimit                    config.RateLimit
	}
	view := func(c config.Channel) routing {
		return routing{c.Name, c.Platform, c.ID, c.Template, c.Bindings.Sources, c.Bindings.Matchers, c.RateLimit}
	}
	for i, c := range g.cfg.Channels {
		old := prev.cfg.Channels[i]
		if !reflect.DeepEqual(view(old), view(c)) || prev.byName[old.Platform] != g.byName[c.Platform] {
			return false
		}
	}
	return true
}

// sourceTemplates are the templates the sources name, by source.
func sourceTemplates(cfg *config.Config) map[string]string {
	out := map[string]string{}
	for _, s := range cfg.Sources {
		if s.Template != "" {
			out[s.Name] = s.Template
		}
	}
	return out
}

// buildSource builds the source sc, or returns prev's source of that name
// when its config is unchanged.
func (a *App) buildSource(cfg *config.Config, sc config.Source, prev *generation) (source.Source, error) {
	if prev != nil {
		for _, old := range prev.cfg.Sources {
			if s, ok := prev.source(sc.Name); ok && old.Name == sc.Name && reflect.DeepEqual(old, sc) {
				return s, nil
			}
		}
	}
	switch sc.Type {
	case config.SourceAlertmanager:
		return alertmanager.New(sc, cfg.Cluster.Name, a.log)
	case config.SourceKubernetes:
		return a.kubernetesSource(cfg, sc)
	case config.SourceGitHub:
		return githubsource.New(sc, cfg.Cluster.Name, a.restConfig, a.chatState, a.log)
	}
	return nil, fmt.Errorf("source %q: unknown type %q", sc.Name, sc.Type)
}

// kubernetesSource builds a kubernetes source; it reports its readiness
// and watch health as the component source/<name>.
func (a *App) kubernetesSource(cfg *config.Config, sc config.Source) (source.Source, error) {
	if a.restConfig == nil {
		return nil, fmt.Errorf("source %q: a kubernetes source needs a cluster connection (in-cluster or --kubeconfig)", sc.Name)
	}
	client, err := dynamic.NewForConfig(a.restConfig)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", sc.Name, err)
	}
	meta, err := metadata.NewForConfig(a.restConfig)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", sc.Name, err)
	}
	pb := rest.CopyConfig(a.restConfig)
	pb.ContentType = "application/vnd.kubernetes.protobuf"
	pb.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	typed, err := kubernetes.NewForConfig(pb)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", sc.Name, err)
	}
	name := sourcePart(sc.Name)
	ns := cfg.Cluster.Namespace
	return k8ssource.New(sc, cfg.Cluster.Name, client, a.log, k8ssource.Options{
		// The agent's own ConfigMaps and Lease, which it writes all the time.
		Own: []string{"configmaps " + ns + "/" + cfg.Cluster.StateConfigMap(), "configmaps " + ns + "/" + cfg.Cluster.OutboxConfigMap(),
			"configmaps " + ns + "/" + cfg.Cluster.ButtonsConfigMap(), "leases.coordination.k8s.io " + ns + "/" + cfg.HA.LeaseName},
		Metadata: meta,
		Typed:    typed,
		OnSynced: func() { a.health.SetReady(name, true) },
		OnWatch:  func(ok bool, reason string) { a.health.SetHealthy(name, ok, reason) },
		Probe: func(ctx context.Context) error {
			return typed.Discovery().RESTClient().Get().AbsPath("/readyz").Timeout(2 * time.Second).Do(ctx).Error()
		},
	})
}

// registerPlatforms adds the readiness of g's platforms that prev (nil
// at start) does not have: each is ready from the start, and its Listen
// reports its connection.
func (a *App) registerPlatforms(g, prev *generation) {
	for _, p := range g.platforms {
		if prev != nil {
			if _, ok := prev.byName[p.Name()]; ok {
				continue
			}
		}
		name := listenerPart(p.Name())
		a.health.Register(name)
		a.health.SetReady(name, true)
	}
}

// runListeners runs, on every replica, the Listen of each platform that
// does not dial out (the web chat, Teams, webhooks), and takes each reload.
func (a *App) runListeners(ctx context.Context) error {
	sup := newSupervisor(false)
	g := a.attach(sup)
	defer a.detach(sup)
	ps := newParts(ctx)
	a.reconcileListeners(ps, g, false)
	return sup.run(ctx, ps, g, func(_, new *generation) { a.reconcileListeners(ps, new, false) })
}

// reconcileListeners makes ps run the Listen of exactly g's platforms that
// listen over a connection (conn) or do not: a platform kept by a reload
// keeps its Listen (and its connection, its open streams); a replaced or
// removed one stops before its successor starts.
func (a *App) reconcileListeners(ps *parts, g *generation, conn bool) {
	want := map[string]chat.Platform{}
	for _, p := range g.platforms {
		if _, ok := p.(chat.ConnectionListener); ok == conn {
			want[listenerPart(p.Name())] = p
		}
	}
	for _, name := range ps.named("platform/") {
		if p, ok := want[name]; !ok || !ps.runs(name, p) {
			ps.stop(name)
		}
	}
	for _, p := range g.platforms {
		name := listenerPart(p.Name())
		if want[name] == p && !ps.runs(name, p) {
			ps.start(name, p, func(ctx context.Context) error { return listen(ctx, p, handler{a}) })
		}
	}
}

// applyLeading takes the leader's work from old to new. Sources new does
// not run stop first, so that their last events reach the old pipeline.
// A new pipeline takes over as after a change of leader, in this process:
// the sources' events wait while the old one drains (for up to
// alerting.DrainTimeout; what it could not deliver stays in the outbox)
// and stops; the new one replays the outbox, in order, before it takes
// any event. Then the listeners that dial out and the new sources start.
func (a *App) applyLeading(ctx context.Context, ps *parts, old, new *generation) {
	from := map[string]time.Time{} // where replaced sources' successors replay from
	for _, name := range ps.named("source/") {
		s, ok := new.source(strings.TrimPrefix(name, "source/"))
		if ok && ps.runs(name, s) {
			continue
		}
		if ok {
			// Its successor replays from the checkpoint as it is now,
			// which stays there (the stop may release it: hold it again).
			from[s.Name()] = a.checkpoint(s.Name())
			a.outbox.Hold(s.Name())
			ps.stop(name)
			a.outbox.Hold(s.Name())
			continue
		}
		ps.stop(name)
	}
	if old.alerts != new.alerts {
		start := time.Now()
		a.liveMu.Lock()
		ps.stop(partAlerting)
		new.alerts.TakeOver(old.alerts)
		n := new.alerts.Replay(ctx)
		a.live = new.alerts
		a.liveMu.Unlock()
		a.log.Info("alerting handed over to the new config", "requeued", n, "took", time.Since(start).Round(time.Millisecond))
		ps.start(partAlerting, new.alerts, new.alerts.Start)
	}
	a.reconcileListeners(ps, new, true)
	for _, s := range new.sources {
		if !ps.runs(sourcePart(s.Name()), s) {
			a.prepareSource(s, true, from)
			a.startSource(ps, s)
		}
	}
}

// changes summarises what a reload from old to new changes, for the log.
func changes(old, new *generation) []any {
	var kept, replaced, added, removed []string
	for _, p := range new.platforms {
		switch q, ok := old.byName[p.Name()]; {
		case !ok:
			added = append(added, p.Name())
		case q == p:
			kept = append(kept, p.Name())
		default:
			replaced = append(replaced, p.Name())
		}
	}
	for _, p := range old.platforms {
		if _, ok := new.byName[p.Name()]; !ok {
			removed = append(removed, p.Name())
		}
	}
	var srcKept, srcStarted, srcRemoved []string
	for _, s := range new.sources {
		if o, ok := old.source(s.Name()); ok && o == s {
			srcKept = append(srcKept, s.Name())
		} else {
			srcStarted = append(srcStarted, s.Name())
		}
	}
	for _, s := range old.sources {
		if _, ok := new.source(s.Name()); !ok {
			srcRemoved = append(srcRemoved, s.Name())
		}
	}
	list := func(names []string) string { return strings.Join(names, ",") }
	return []any{"platforms_kept", list(kept), "platforms_restarted", list(replaced), "platforms_added", list(added),
		"platforms_removed", list(removed), "sources_kept", list(srcKept), "sources_started", list(srcStarted), "sources_removed", list(srcRemoved),
		"alerting_kept", old.alerts == new.alerts}
}
