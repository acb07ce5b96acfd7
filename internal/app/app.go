// Package app wires the agent together and runs it: sources, chat listeners
// and the HTTP server are runnables in one errgroup, so the first failure
// stops them all, and a cancelled context shuts everything down within the
// configured grace period.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/buildinfo"
	"github.com/kubechat/kubechat/internal/button"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/platforms"
	"github.com/kubechat/kubechat/internal/commands"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/health"
	"github.com/kubechat/kubechat/internal/httpserver"
	"github.com/kubechat/kubechat/internal/outbox"
	"github.com/kubechat/kubechat/internal/podrun"
	"github.com/kubechat/kubechat/internal/source"
	"github.com/kubechat/kubechat/internal/state"
	"github.com/kubechat/kubechat/plugins"
)

// Known lists the registered platform and executor types, for config validation.
func Known() config.Known {
	return config.Known{
		PlatformTypes: slices.Sorted(maps.Keys(platforms.Factories)),
		ExecutorTypes: slices.Sorted(maps.Keys(plugins.Executors)),
		// A channel bound only to these needs no identity.
		ClusterFreeTypes: plugins.ClusterFreeTypes(),
	}
}

// ClusterConfig is the agent's connection: the in-cluster config in a pod,
// otherwise a kubeconfig (flagPath, else cfgPath, else $KUBECONFIG or
// ~/.kube/config).
func ClusterConfig(flagPath, cfgPath string) (*rest.Config, error) {
	if flagPath == "" && cfgPath == "" {
		if c, err := rest.InClusterConfig(); err == nil {
			return c, nil
		} else if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if flagPath != "" {
		rules.ExplicitPath = flagPath
	} else if cfgPath != "" {
		rules.ExplicitPath = cfgPath
	}
	c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return c, nil
}

// Load loads and validates config files against the registries.
func Load(paths ...string) (*config.Config, error) { return config.Load(Known(), paths...) }

// Options are what the caller provides besides the config.
type Options struct {
	// RESTConfig is the agent's connection to its cluster. It may be nil only
	// when no kubernetes source or executor is configured.
	RESTConfig *rest.Config
	HTTPClient *http.Client
	// ConfigFiles are the files the config was loaded from. The agent
	// watches them and reloads when their content changes; none (the
	// embedded config): nothing to watch or reload.
	ConfigFiles []string
	// Reload asks for a reload now, whether the files changed or not (the
	// binary sends SIGHUP here).
	Reload <-chan os.Signal
}

// App is one configured agent. What its config describes (platforms,
// channels, sources, executors, policies) is a generation, which a reload
// replaces; the rest (the HTTP server, the state, the outbox, leader
// election) lives as long as the process.
type App struct {
	// cfg is the config the agent started with. Its cluster, log, http and
	// ha blocks hold for the whole run: a reload that changes them is
	// refused (see restartOnly).
	cfg        *config.Config
	opts       Options
	restConfig *rest.Config
	outbox     *outbox.Store
	leading    atomic.Bool
	// identity names this replica; advertise is where the other replica
	// reaches its HTTP server.
	identity    string
	advertise   string
	leaderGauge prometheus.Gauge
	log         *slog.Logger
	health      *health.Tracker
	registry    *prometheus.Registry
	http        *httpserver.Server
	state       *state.Store
	clientset   kubernetes.Interface
	// runner runs command pods.
	runner *podrun.Runner

	// What every generation shares: the platforms' dependencies, the
	// state the pipelines and handlers keep (in memory without a
	// cluster), the button store and the metrics.
	deps           chat.Deps
	chatState      chat.StateStore
	buttons        *button.Store
	k8sVersion     func(context.Context) (string, error)
	alertMetrics   *alerting.Metrics
	decisions      *alerting.Decisions // what decided each event's outcome, kept across reloads
	commandMetrics *commands.Metrics
	reloads        reloadMetrics

	// gen is the generation that runs; mu orders its replacement with the
	// supervisors that attach to it (see attach and swap).
	gen         atomic.Pointer[generation]
	mu          sync.Mutex
	supervisors map[*supervisor]bool
	// reloadMu runs one reload at a time; watch is what it compares files
	// with, every poll (reloadPoll; tests that reload by hand lengthen it).
	reloadMu sync.Mutex
	watch    *fileWatcher
	poll     time.Duration
	// live is the pipeline the sources' events go to; liveMu holds them
	// back while a reload hands over to a new pipeline.
	liveMu sync.RWMutex
	live   *alerting.Pipeline
}

// New builds every part of the agent from cfg. It binds the HTTP port but
// does not contact the cluster or any chat service.
func New(cfg *config.Config, log *slog.Logger, opts Options) (*App, error) {
	host, _ := os.Hostname()
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	a := &App{cfg: cfg, opts: opts, log: log, health: health.New(cfg.HTTP.UnhealthyAfter.D()), registry: prometheus.NewRegistry(),
		identity: fmt.Sprintf("%s-%d", host, os.Getpid()), supervisors: map[*supervisor]bool{}, watch: newFileWatcher(opts.ConfigFiles), poll: reloadPoll}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), a.health)
	if err := podrun.RegisterMetrics(a.registry); err != nil {
		return nil, err
	}
	a.leaderGauge = promauto.With(a.registry).NewGauge(prometheus.GaugeOpts{
		Name: "kubechat_leader", Help: "1 while this replica runs the leader's work (sources, delivery).",
	})
	bi := buildinfo.Get()
	promauto.With(a.registry).NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubechat_build_info", Help: "Always 1; labels carry the build: version, VCS revision, Go version, and the cluster the agent serves.",
	}, []string{"version", "revision", "goversion", "cluster"}).WithLabelValues(bi.Version, bi.Revision, bi.GoVersion, cfg.Cluster.Name).Set(1)
	a.reloads = newReloadMetrics(a.registry)
	a.alertMetrics = alerting.NewMetrics(a.registry)
	a.decisions = alerting.NewDecisions(0)
	a.commandMetrics = commands.NewMetrics(a.registry)
	if opts.RESTConfig != nil {
		cs, err := kubernetes.NewForConfig(opts.RESTConfig)
		if err != nil {
			return nil, fmt.Errorf("cluster client: %w", err)
		}
		a.clientset, a.restConfig = cs, opts.RESTConfig
		a.state = state.New(cs, cfg.Cluster.Namespace, cfg.Cluster.StateConfigMap())
		a.outbox = outbox.New(cs, cfg.Cluster.Namespace, cfg.Cluster.OutboxConfigMap(), a.registry, log)
	} else {
		// Nothing survives a restart without a cluster, but a reload
		// hands what is queued from one pipeline to the next.
		a.outbox = outbox.New(nil, "", "", a.registry, log)
	}
	a.deps = chat.Deps{Log: log, HTTPClient: opts.HTTPClient, Metrics: a.registry, Health: a.health, Cluster: cfg.Cluster.Name}
	// Without a cluster, state lives in memory, shared by every generation,
	// so that a reload keeps open alerts and switches.
	a.chatState = state.NewMemory()
	if a.state != nil {
		a.deps.State = a.state
		a.chatState = a.state
	}
	a.runner = newRunner(a.clientset, cfg.Cluster.Name, log)
	if a.clientset != nil {
		cs := a.clientset
		a.k8sVersion = func(context.Context) (string, error) {
			v, err := cs.Discovery().ServerVersion()
			if err != nil {
				return "", err
			}
			return v.GitVersion, nil
		}
	}
	if cfg.HA.LeaderElection && a.clientset == nil {
		return nil, errors.New("ha.leaderElection needs a cluster connection (in-cluster or --kubeconfig)")
	}
	if cfg.HA.LeaderElection {
		a.health.Register("leader-election")
	}
	var err error
	if a.buttons, err = buttonStore(cfg, a.clientset, log); err != nil {
		return nil, err
	}
	g, err := a.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	if a.http, err = httpserver.New(cfg.HTTP.Listen, a.health, a.registry, log); err != nil {
		return nil, err
	}
	if cfg.HA.LeaderElection {
		a.advertise = AdvertiseURL(cfg, a.http.Addr())
	} else {
		// With leader election the leader registers them (lead): a
		// standby is ready without sources.
		for _, s := range g.sources {
			if _, ok := s.(replayer); ok {
				a.health.Register(sourcePart(s.Name()))
			}
		}
	}
	g.alerts.SetActions(g.commands)
	a.gen.Store(g)
	a.live = g.alerts
	a.http.SetInbound(g.inbound)
	return a, nil
}

// inbound wraps an inbound handler (a webhook, clicks, the web chat):
// with leader election those are the leader's to handle, and another
// replica hands them on.
func (a *App) inbound(h http.Handler) http.Handler {
	if !a.cfg.HA.LeaderElection {
		return h
	}
	return httpserver.ToLeader(h, a.leader)
}

// current is the generation that runs.
func (a *App) current() *generation { return a.gen.Load() }

// handler answers an inbound message with the commands of the generation
// that runs when it arrives: every platform's Listen is given one, so a
// platform kept across a reload answers by the new config. It shows
// drafts of replies that grow (chat.DraftHandler).
type handler struct{ a *App }

func (h handler) Handle(ctx context.Context, in chat.Inbound) chat.Message {
	return h.a.current().commands.Handle(ctx, in)
}

func (h handler) HandleDraft(ctx context.Context, in chat.Inbound, d chat.Draft) chat.Message {
	return h.a.current().commands.HandleDraft(ctx, in, d)
}

// emit hands an event to the pipeline that runs; while a reload hands over
// from one pipeline to the next, it waits.
func (a *App) emit(ctx context.Context, ev event.Event) {
	a.liveMu.RLock()
	defer a.liveMu.RUnlock()
	a.live.Emit(ctx, ev)
}

// leaderKey is the state entry in which the leader says where it is.
const leaderKey = "leader"

// leaderRecord is the leader's entry.
type leaderRecord struct {
	Identity string `json:"identity"`
	URL      string `json:"url"`
}

// leader says whether this replica leads, else where the leader is.
func (a *App) leader() (bool, string) {
	if a.leading.Load() {
		return true, ""
	}
	var rec leaderRecord
	if a.state == nil {
		return false, ""
	}
	if v, ok := a.state.Get(leaderKey); ok && json.Unmarshal([]byte(v), &rec) == nil && rec.Identity != a.identity {
		return false, rec.URL
	}
	return false, ""
}

// AdvertiseURL is where the other replica reaches this one:
// ha.advertiseURL, else $KUBECHAT_POD_IP (the chart sets it from the
// pod's status) with the listen port, else the listen address itself.
func AdvertiseURL(cfg *config.Config, listen string) string {
	if cfg.HA.AdvertiseURL != "" {
		return cfg.HA.AdvertiseURL
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip := os.Getenv(PodIPEnv); ip != "" {
		host = ip
	} else if h := net.ParseIP(host); h == nil || h.IsUnspecified() {
		host, _ = os.Hostname()
	}
	return "http://" + net.JoinHostPort(host, port)
}

// PodIPEnv names the variable holding the pod's IP (the chart sets it).
const PodIPEnv = "KUBECHAT_POD_IP"

// buttonStore is where button ids are issued and redeemed: with
// ha.buttonKey, signed with that key and kept in the <stateName>-buttons
// ConfigMap, so that buttons work on every replica and after restarts;
// without it, in this process only.
func buttonStore(cfg *config.Config, cs kubernetes.Interface, log *slog.Logger) (*button.Store, error) {
	if cfg.HA.ButtonKey == nil || cfg.HA.ButtonKey.IsZero() {
		if cfg.HA.LeaderElection {
			log.Warn("ha.buttonKey is not set: buttons work only on the replica that posted them, until it restarts")
		}
		return button.NewStore(nil, button.DefaultTTL)
	}
	s, err := button.NewStore([]byte(cfg.HA.ButtonKey.Reveal()), button.DefaultTTL)
	if err != nil {
		return nil, fmt.Errorf("ha.buttonKey: %w", err)
	}
	if cs != nil {
		s.UseShared(state.New(cs, cfg.Cluster.Namespace, cfg.Cluster.ButtonsConfigMap()))
	}
	return s, nil
}

// Check validates config files the way "run" would, without connecting:
// it loads them and builds every platform and executor.
func Check(paths ...string) error {
	cfg, err := Load(paths...)
	if err != nil {
		return err
	}
	return checkBuild(cfg)
}

// checkBuild builds every platform and executor of a loaded config
// offline, as check-config and a reload do before anything is swapped.
func checkBuild(cfg *config.Config) error {
	log := slog.New(slog.DiscardHandler)
	var perr error
	d := chat.Deps{Log: log, HTTPClient: http.DefaultClient, Metrics: prometheus.NewRegistry(), Health: health.New(time.Minute), Cluster: cfg.Cluster.Name}
	for i, pc := range cfg.Platforms {
		if _, err := platforms.Factories[pc.Type].New(pc.Name, pc.Settings, d); err != nil {
			perr = errors.Join(perr, fmt.Errorf("platforms[%d]: %w", i, err))
		}
	}
	execs, eerr := plugins.Build(cfg, executor.Deps{Log: log, Cluster: cfg.Cluster.Name})
	var ierr error
	if eerr == nil {
		// The image may come from the environment of the agent's pod.
		_, _, ierr = podExecutors(cfg, execs, nil, "$"+ImageEnv)
	}
	return errors.Join(perr, eerr, ierr)
}

// HTTPAddr is the address the HTTP server listens on.
func (a *App) HTTPAddr() string { return a.http.Addr() }

// Ready is what /readyz answers: nil once every part is ready, or an
// error naming those that are not.
func (a *App) Ready() error { return a.health.Ready() }

// Run runs the agent until ctx is done or a part fails. With a cluster,
// controller-runtime's manager owns the lifecycle: the HTTP server, the
// inbound listeners and the config watcher run on every replica; the
// leader's work (sources, delivery, the listeners that dial out) runs
// where the Lease is held, and on a stop it runs to its end (the drain and
// the last outbox write) before the manager releases the Lease and Run
// returns.
func (a *App) Run(ctx context.Context) error {
	g := a.current()
	a.log.Info("kubechat starting", "version", buildinfo.String(), "cluster", a.cfg.Cluster.Name,
		"platforms", len(g.platforms), "sources", len(g.sources), "leader_election", a.cfg.HA.LeaderElection)
	for _, w := range a.cfg.Warnings() {
		a.log.Warn("config warning", "warning", w.Error())
	}
	if a.state != nil {
		if err := a.state.Load(ctx); err != nil {
			return err
		}
	}
	a.registerPlatforms(g, nil)
	var everywhere []func(context.Context) error
	everywhere = append(everywhere, func(ctx context.Context) error { return a.http.Start(ctx, a.cfg.HTTP.ShutdownTimeout.D()) })
	if a.state != nil {
		everywhere = append(everywhere, a.state.Watch)
	}
	// Listeners that take inbound HTTP run on every replica; the leader
	// listens on the platforms that dial out (see lead).
	everywhere = append(everywhere, a.runListeners, a.watchConfig)
	if a.restConfig == nil {
		return a.runAlone(ctx, append(everywhere, a.lead))
	}
	grace := a.cfg.HTTP.ShutdownTimeout.D()
	mgr, err := manager.New(a.restConfig, manager.Options{
		Logger:                        logr.FromSlogHandler(a.log.Handler()),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                a.cfg.HA.LeaderElection,
		LeaderElectionID:              a.cfg.HA.LeaseName,
		LeaderElectionNamespace:       a.cfg.Cluster.Namespace,
		LeaderElectionResourceLock:    resourcelock.LeasesResourceLock,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 ptr(a.cfg.HA.LeaseDuration.D()),
		RenewDeadline:                 ptr(a.cfg.HA.RenewDeadline.D()),
		RetryPeriod:                   ptr(a.cfg.HA.RetryPeriod.D()),
		GracefulShutdownTimeout:       &grace,
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	for _, f := range everywhere {
		if err := mgr.Add(runnable{run: f}); err != nil {
			return err
		}
	}
	if err := mgr.Add(runnable{run: a.lead, leader: true}); err != nil {
		return err
	}
	if a.cfg.HA.LeaderElection {
		a.health.SetReady("leader-election", true)
	}
	err = mgr.Start(ctx)
	a.log.Info("kubechat stopped")
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("leader election: %w", err)
	}
	return err
}

// runnable is one part of the agent for the manager; leader parts run
// only where the Lease is held.
type runnable struct {
	run    func(context.Context) error
	leader bool
}

func (r runnable) Start(ctx context.Context) error { return r.run(ctx) }

// NeedLeaderElection tells the manager where r runs.
func (r runnable) NeedLeaderElection() bool { return r.leader }

func ptr[T any](v T) *T { return &v }

// runAlone runs parts in one errgroup, for an agent without a cluster
// (nothing to elect a leader in): the first error stops all, and a stop
// gets the configured grace.
func (a *App) runAlone(ctx context.Context, parts []func(context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		g.Go(func() error { return p(gctx) })
	}
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		a.log.Info("kubechat stopped")
		return err
	case <-gctx.Done():
	}
	t := time.NewTimer(a.cfg.HTTP.ShutdownTimeout.D())
	defer t.Stop()
	select {
	case err := <-done:
		a.log.Info("kubechat stopped")
		return err
	case <-t.C:
		return fmt.Errorf("shutdown: parts still running after %s", a.cfg.HTTP.ShutdownTimeout)
	}
}

// listen runs p's Listen until ctx ends.
func listen(ctx context.Context, p chat.Platform, h chat.Handler) error {
	if err := p.Listen(ctx, h); err != nil {
		return fmt.Errorf("platform %q: %w", p.Name(), err)
	}
	return nil
}

// Leading reports whether this replica runs the leader's work now.
func (a *App) Leading() bool { return a.leading.Load() }

// lead runs what only the leader runs: the messages the outbox kept from
// before (a restart, the other replica), the sources (replaying what
// happened since their checkpoints in the outbox), delivery, and the platforms
// that listen over a connection. It takes each reload as it comes (see
// applyLeading). It returns once all of them stopped and the outbox was
// written a last time.
func (a *App) lead(ctx context.Context) error {
	if a.cfg.HA.LeaderElection {
		a.log.Info("became the leader", "identity", a.identity)
		defer a.log.Info("leading work stopped; the Lease is released next", "identity", a.identity)
	}
	a.leading.Store(true)
	a.leaderGauge.Set(1)
	defer func() { a.leading.Store(false); a.leaderGauge.Set(0) }()
	if a.state != nil {
		// What the last leader recorded counts.
		if err := a.state.Load(ctx); err != nil {
			return err
		}
	}
	if err := a.outbox.Load(ctx); err != nil {
		return err
	}
	if a.cfg.HA.LeaderElection && a.state != nil {
		rec, _ := json.Marshal(leaderRecord{Identity: a.identity, URL: a.advertise})
		if err := a.state.Set(ctx, leaderKey, string(rec)); err != nil {
			a.log.Warn("cannot say where the leader is; the other replica answers inbound requests 503 until it knows", "err", err)
		}
	}
	sup := newSupervisor(true)
	g := a.attach(sup)
	defer a.detach(sup)
	for _, s := range g.sources {
		a.prepareSource(s, false, nil)
	}
	if n := g.alerts.Replay(ctx); n > 0 {
		a.log.Info("delivering messages queued before the restart", "messages", n)
	}
	a.liveMu.Lock()
	a.live = g.alerts
	a.liveMu.Unlock()
	ps := newParts(ctx)
	ps.start(partAlerting, g.alerts, g.alerts.Start)
	ps.start(partCommandPods, nil, func(ctx context.Context) error { return a.commandPods(ctx, g) })
	a.reconcileListeners(ps, g, true)
	for _, s := range g.sources {
		a.startSource(ps, s)
	}
	return sup.run(ctx, ps, g, func(old, new *generation) { a.applyLeading(ctx, ps, old, new) })
}

// prepareSource readies a source the leader is about to start: its
// readiness (with leader election; without, New registered it) and its
// replay, from its own checkpoint (or from from[name], the checkpoint of
// the source it replaces), which stays where it is until the source has
// queued its replay. fresh is set for a source a reload (re)starts: it is
// not ready until it synced.
func (a *App) prepareSource(s source.Source, fresh bool, from map[string]time.Time) {
	r, ok := s.(replayer)
	if !ok {
		return // a webhook receiver: ready once it runs, nothing to sync
	}
	name := sourcePart(s.Name())
	if fresh {
		a.health.Unregister(name)
	}
	if a.cfg.HA.LeaderElection || fresh {
		a.health.Register(name)
	}
	since, ok := from[s.Name()]
	if !ok {
		since = a.checkpoint(s.Name())
	}
	a.outbox.Hold(s.Name())
	if !since.IsZero() {
		a.log.Info("replaying changes since the checkpoint", "source", s.Name(), "since", since)
	}
	r.SetReplay(since, func() { a.outbox.Release(s.Name()) })
}

// checkpoint is where source replays from: its own checkpoint, else the
// one an agent from before the outbox kept in the state for all sources.
func (a *App) checkpoint(source string) time.Time {
	if t := a.outbox.Checkpoint(source); !t.IsZero() {
		return t
	}
	return a.legacyCheckpoint()
}

// legacyCheckpoint is the one checkpoint an agent from before the outbox
// kept in the state.
func (a *App) legacyCheckpoint() time.Time {
	if a.state == nil {
		return time.Time{}
	}
	var old struct {
		Time time.Time `json:"time"`
	}
	if v, ok := a.state.Get("checkpoint"); ok && json.Unmarshal([]byte(v), &old) == nil {
		return old.Time
	}
	return time.Time{}
}

// startSource runs s as a part of the leader's work.
func (a *App) startSource(ps *parts, s source.Source) {
	ps.start(sourcePart(s.Name()), s, func(ctx context.Context) error { return s.Start(ctx, a.emit) })
}

// replayer is a source that replays what happened since a checkpoint; it
// calls replayed once, when its replay is queued or when it stops.
type replayer interface {
	SetReplay(since time.Time, replayed func())
}
