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
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
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
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/health"
	"github.com/kubechat/kubechat/internal/httpserver"
	"github.com/kubechat/kubechat/internal/outbox"
	"github.com/kubechat/kubechat/internal/podrun"
	"github.com/kubechat/kubechat/internal/source"
	"github.com/kubechat/kubechat/internal/source/alertmanager"
	k8ssource "github.com/kubechat/kubechat/internal/source/kubernetes"
	"github.com/kubechat/kubechat/internal/state"
	"github.com/kubechat/kubechat/plugins"
)

// Known lists the registered platform and executor types, for config validation.
func Known() config.Known {
	return config.Known{
		PlatformTypes: slices.Sorted(maps.Keys(platforms.Factories)),
		ExecutorTypes: slices.Sorted(maps.Keys(plugins.Executors)),
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
}

// App is one configured agent.
type App struct {
	cfg        *config.Config
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
	platforms   []chat.Platform
	sources     []source.Source
	// alerts takes events to channels; commands answers what users type.
	alerts    *alerting.Pipeline
	commands  *commands.Handler
	state     *state.Store
	clientset kubernetes.Interface
	// runner runs command pods; podNamespaces are where they run.
	runner        *podrun.Runner
	podNamespaces []string
}

// New builds every part of the agent from cfg. It binds the HTTP port but
// does not contact the cluster or any chat service.
func New(cfg *config.Config, log *slog.Logger, opts Options) (*App, error) {
	host, _ := os.Hostname()
	a := &App{cfg: cfg, log: log, health: health.New(cfg.HTTP.UnhealthyAfter.D()), registry: prometheus.NewRegistry(),
		identity: fmt.Sprintf("%s-%d", host, os.Getpid())}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), a.health)
	a.leaderGauge = promauto.With(a.registry).NewGauge(prometheus.GaugeOpts{
		Name: "kubechat_leader", Help: "1 while this replica runs the leader's work (sources, delivery).",
	})
	bi := buildinfo.Get()
	promauto.With(a.registry).NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubechat_build_info", Help: "Always 1; labels carry the build: version, VCS revision, Go version, and the cluster the agent serves.",
	}, []string{"version", "revision", "goversion", "cluster"}).WithLabelValues(bi.Version, bi.Revision, bi.GoVersion, cfg.Cluster.Name).Set(1)

	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.RESTConfig != nil {
		cs, err := kubernetes.NewForConfig(opts.RESTConfig)
		if err != nil {
			return nil, fmt.Errorf("cluster client: %w", err)
		}
		a.clientset, a.restConfig = cs, opts.RESTConfig
		a.state = state.New(cs, cfg.Cluster.Namespace, cfg.Cluster.StateConfigMap())
		a.outbox = outbox.New(cs, cfg.Cluster.Namespace, cfg.Cluster.OutboxConfigMap(), a.registry, log)
	}
	deps := chat.Deps{Log: log, HTTPClient: opts.HTTPClient, Metrics: a.registry, Health: a.health, Cluster: cfg.Cluster.Name}
	if a.state != nil {
		deps.State = a.state
	}
	byName, err := buildPlatforms(cfg, deps)
	if err != nil {
		return nil, err
	}
	for _, p := range cfg.Platforms {
		a.platforms = append(a.platforms, byName[p.Name])
	}
	execs, err := plugins.Build(cfg, executor.Deps{Log: log, RESTConfig: opts.RESTConfig, Cluster: cfg.Cluster.Name})
	if err != nil {
		return nil, err
	}
	var chatState chat.StateStore
	if a.state != nil {
		chatState = a.state
	}
	copts := commands.Options{Executors: execs, Health: a.health, State: chatState}
	a.runner = newRunner(a.clientset, cfg.Cluster.Name, log)
	if copts.PodExecutors, a.podNamespaces, err = podExecutors(cfg, execs, a.runner, os.Getenv(ImageEnv)); err != nil {
		return nil, err
	}
	if len(copts.PodExecutors) > 0 && a.runner == nil {
		return nil, errNoCluster
	}
	if a.clientset != nil {
		cs := a.clientset
		copts.KubernetesVersion = func(context.Context) (string, error) {
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
	if copts.Buttons, err = buttonStore(cfg, a.clientset, log); err != nil {
		return nil, err
	}
	a.alerts, err = alerting.New(cfg, byName, alerting.Options{State: chatState, Health: a.health, Outbox: a.outbox,
		Backoff: chat.Backoff{Deadline: cfg.Delivery.Deadline.D(), Max: cfg.Delivery.MaxBackoff.D()}}, a.registry, log)
	if err != nil {
		return nil, err
	}
	copts.Alerts = a.alerts
	if a.commands, err = commands.New(cfg, copts, a.registry, log); err != nil {
		return nil, err
	}
	a.alerts.SetActions(a.commands)
	alertmanagers, err := alertmanagerSources(cfg, log)
	if err != nil {
		return nil, err
	}
	for _, s := range alertmanagers {
		a.sources = append(a.sources, s)
	}
	for _, sc := range cfg.Sources {
		if sc.Type != config.SourceKubernetes {
			continue
		}
		if opts.RESTConfig == nil {
			return nil, fmt.Errorf("source %q: a kubernetes source needs a cluster connection (in-cluster or --kubeconfig)", sc.Name)
		}
		client, err := dynamic.NewForConfig(opts.RESTConfig)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", sc.Name, err)
		}
		name := "source/" + sc.Name
		if !cfg.HA.LeaderElection {
			a.health.Register(name) // a standby is ready without sources
		}
		meta, err := metadata.NewForConfig(opts.RESTConfig)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", sc.Name, err)
		}
		pb := rest.CopyConfig(opts.RESTConfig)
		pb.ContentType = "application/vnd.kubernetes.protobuf"
		pb.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		typed, err := kubernetes.NewForConfig(pb)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", sc.Name, err)
		}
		ns := cfg.Cluster.Namespace
		s, err := k8ssource.New(sc, cfg.Cluster.Name, client, log, k8ssource.Options{
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
		if err != nil {
			return nil, err
		}
		a.sources = append(a.sources, s)
	}
	if a.http, err = httpserver.New(cfg.HTTP.Listen, a.health, a.registry, log); err != nil {
		return nil, err
	}
	// Inbound requests (webhooks, clicks, the web chat) are the leader's
	// to handle: another replica hands them on.
	inbound := func(h http.Handler) http.Handler { return h }
	if cfg.HA.LeaderElection {
		a.advertise = advertiseURL(cfg, a.http.Addr())
		inbound = func(h http.Handler) http.Handler { return httpserver.ToLeader(h, a.leader) }
	}
	for _, s := range alertmanagers {
		a.http.Handle(s.Path(), inbound(s))
	}
	for _, p := range a.platforms {
		if r, ok := p.(chat.HTTPReceiver); ok {
			prefix := chat.HTTPPrefix(p)
			a.http.Handle(prefix+"/", inbound(http.StripPrefix(prefix, r.HTTPHandler())))
		}
	}
	return a, nil
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

// advertiseURL is where the other replica reaches this one:
// ha.advertiseURL, else $KUBECHAT_POD_IP (the chart sets it from the
// pod's status) with the listen port, else the listen address itself.
func advertiseURL(cfg *config.Config, listen string) string {
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

func buildPlatforms(cfg *config.Config, d chat.Deps) (map[string]chat.Platform, error) {
	out := map[string]chat.Platform{}
	var errs []error
	for i, pc := range cfg.Platforms {
		f := platforms.Factories[pc.Type].New
		p, err := f(pc.Name, pc.Settings, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("platforms[%d]: %w", i, err))
			continue
		}
		out[pc.Name] = p
	}
	return out, errors.Join(errs...)
}

// Check validates config files the way "run" would, without connecting:
// it loads them and builds every platform and executor.
func Check(paths ...string) error {
	cfg, err := Load(paths...)
	if err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	_, perr := buildPlatforms(cfg, chat.Deps{Log: log, HTTPClient: http.DefaultClient, Metrics: prometheus.NewRegistry(), Health: health.New(time.Minute), Cluster: cfg.Cluster.Name})
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

// Run runs the agent until ctx is done or a part fails. With a cluster,
// controller-runtime's manager owns the lifecycle: the HTTP server and the
// inbound listeners run on every replica; the leader's work (sources,
// delivery, the listeners that dial out) runs where the Lease is held, and
// on a stop it runs to its end (the drain and the last outbox write)
// before the manager releases the Lease and Run returns.
func (a *App) Run(ctx context.Context) error {
	a.log.Info("kubechat starting", "version", buildinfo.String(), "cluster", a.cfg.Cluster.Name,
		"platforms", len(a.platforms), "sources", len(a.sources), "leader_election", a.cfg.HA.LeaderElection)
	for _, w := range a.cfg.Warnings() {
		a.log.Warn("config warning", "warning", w.Error())
	}
	if a.state != nil {
		if err := a.state.Load(ctx); err != nil {
			return err
		}
	}
	cleanupPods(ctx, a.runner, a.podNamespaces, a.cfg.HA.LeaderElection, a.log)
	var everywhere []func(context.Context) error
	everywhere = append(everywhere, func(ctx context.Context) error { return a.http.Start(ctx, a.cfg.HTTP.ShutdownTimeout.D()) })
	if a.state != nil {
		everywhere = append(everywhere, a.state.Watch)
	}
	for _, p := range a.platforms {
		name := "platform/" + p.Name()
		a.health.Register(name)
		a.health.SetReady(name, true)
		if _, ok := p.(chat.ConnectionListener); ok {
			continue // the leader listens: see lead
		}
		everywhere = append(everywhere, func(ctx context.Context) error { return listen(ctx, p, a.commands) })
	}
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
// that listen over a connection. It returns once all of them stopped and
// the outbox was written a last time.
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
	// An agent from before the outbox kept one checkpoint in the state.
	var legacy time.Time
	if a.state != nil {
		var old struct {
			Time time.Time `json:"time"`
		}
		if v, ok := a.state.Get("checkpoint"); ok && json.Unmarshal([]byte(v), &old) == nil {
			legacy = old.Time
		}
	}
	for _, s := range a.sources {
		if _, ok := s.(*alertmanager.Source); ok {
			continue // a webhook receiver: ready once it runs, nothing to sync
		}
		if a.cfg.HA.LeaderElection {
			a.health.Register("source/" + s.Name())
		}
		r, ok := s.(replayer)
		if !ok {
			continue
		}
		// Each source replays from its own checkpoint, which stays where it
		// is until the source has queued its replay.
		since := a.outbox.Checkpoint(s.Name())
		if since.IsZero() {
			since = legacy
		}
		a.outbox.Hold(s.Name())
		if !since.IsZero() {
			a.log.Info("replaying changes since the checkpoint", "source", s.Name(), "since", since)
		}
		r.SetReplay(since, func() { a.outbox.Release(s.Name()) })
	}
	if n := a.alerts.Replay(ctx); n > 0 {
		a.log.Info("delivering messages queued before the restart", "messages", n)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.alerts.Start(gctx) })
	for _, p := range a.platforms {
		if _, ok := p.(chat.ConnectionListener); ok {
			g.Go(func() error { return listen(gctx, p, a.commands) })
		}
	}
	for _, s := range a.sources {
		g.Go(func() error { return s.Start(gctx, a.alerts.Emit) })
	}
	return g.Wait()
}

// replayer is a source that replays what happened since a checkpoint; it
// calls replayed once, when its replay is queued or when it stops.
type replayer interface {
	SetReplay(since time.Time, replayed func())
}

// alertmanagerSources builds the Alertmanager webhook receivers; the HTTP
// server serves each at /alertmanager/<name>.
func alertmanagerSources(cfg *config.Config, log *slog.Logger) ([]*alertmanager.Source, error) {
	var out []*alertmanager.Source
	for _, sc := range cfg.Sources {
		if sc.Type != config.SourceAlertmanager {
			continue
		}
		s, err := alertmanager.New(sc, cfg.Cluster.Name, log)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
