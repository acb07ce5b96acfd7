// Package hub is `kubechat hub`: one process that holds a fleet's chat
// connections and no cluster access. It delivers what the agents publish
// to their JetStream streams through the delivery core (internal/chat
// queues: order, rate limits, retries, splitting), and hands each mention
// or click to the agent of the cluster it is for (see internal/fleet).
//
// Deliver once: a message is acknowledged to JetStream only after its
// delivery is recorded in the hub's key-value bucket (with the chat ref,
// so that a later edit finds the message). A message redelivered after a
// restart whose delivery was recorded is acknowledged and dropped; one
// still in flight in this process is left to its queue.
package hub

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/platforms"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/fleet"
	"github.com/kubechat/kubechat/internal/health"
	"github.com/kubechat/kubechat/internal/httpserver"
)

// AckWait is how long JetStream waits for the hub's acknowledgement before
// it hands a message out again; a message still queued here is kept
// in progress meanwhile.
const AckWait = time.Minute

// Hub is the fleet's hub.
type Hub struct {
	cfg     *config.Config
	log     *slog.Logger
	health  *health.Tracker
	metrics *metrics
	dm      *chat.DeliveryMetrics

	platforms map[string]chat.Platform
	// channels by platform and channel id.
	channels map[string]*config.Channel
	queues   map[string]*chat.Queue
	clusters []string

	// identity names this hub in the lease; url is where it is reached.
	identity, url string
	// receivers are the HTTP handlers of the platforms that take webhooks
	// (Teams, Mattermost's buttons, the web chat), by platform name.
	receivers map[string]http.Handler
	// state keeps what platforms must remember, in NATS.
	state state
	// lease is set once Run made it; leading while this hub leads.
	lease   atomic.Pointer[fleet.Lease]
	leading atomic.Bool

	// Set by Run.
	nc *nats.Conn
	js jetstream.JetStream
	kv jetstream.KeyValue

	// stopping is set while the hub stops leading: what JetStream still
	// hands it goes back at once.
	stopping atomic.Bool

	mu       sync.Mutex
	inflight map[string]bool
	refs     map[string]chat.MessageRef // recorded here, maybe not yet in the bucket
	seen     map[string]time.Time       // last hello by cluster
}

// Options are the hub's optional parts.
type Options struct {
	// Metrics registers the hub's metrics (nil: none).
	Metrics prometheus.Registerer
	Health  *health.Tracker
	// NATS, when set, is used instead of connecting to cfg.Fleet.NATS (tests).
	NATS *nats.Conn
	// Identity names this hub in the fleet's lease (default: the host's
	// name, the pod's in Kubernetes, and a random suffix).
	Identity string
	// URL is where the other hub replicas reach this one's HTTP server, to
	// hand it the webhooks they receive while it leads.
	URL string
}

func channelKey(platform, id string) string { return platform + "\x00" + id }

// New builds the hub from cfg: its platforms and channels, and the fleet
// section. It refuses what a hub must not have (sources, executors, an
// agent's hub platform) and does not connect.
func New(cfg *config.Config, log *slog.Logger, o Options) (*Hub, error) {
	if len(cfg.Fleet.Clusters) == 0 {
		return nil, errors.New("fleet.clusters: a hub needs at least one cluster")
	}
	var errs []error
	if len(cfg.Sources) > 0 {
		errs = append(errs, errors.New("sources: a hub has no cluster access; sources belong in each cluster's agent"))
	}
	if len(cfg.Executors) > 0 || len(cfg.Actions) > 0 {
		errs = append(errs, errors.New("executors, actions: a hub runs no command; each cluster's agent does"))
	}
	h := &Hub{
		cfg: cfg, log: log, health: o.Health, nc: o.NATS,
		platforms: map[string]chat.Platform{}, channels: map[string]*config.Channel{}, queues: map[string]*chat.Queue{},
		inflight: map[string]bool{}, refs: map[string]chat.MessageRef{}, seen: map[string]time.Time{},
		metrics: newMetrics(o.Metrics), dm: chat.NewDeliveryMetrics(o.Metrics),
	}
	for _, c := range cfg.Fleet.Clusters {
		h.clusters = append(h.clusters, c.Name)
	}
	if h.identity = o.Identity; h.identity == "" {
		h.identity = defaultIdentity()
	}
	h.url, h.receivers = o.URL, map[string]http.Handler{}
	deps := chat.Deps{Log: log, Metrics: o.Metrics, Health: o.Health, Cluster: cfg.Cluster.Name, State: &h.state}
	for i, pc := range cfg.Platforms {
		if pc.Type == "hub" {
			errs = append(errs, fmt.Errorf("platforms[%d].type: a hub holds the chat platforms; type hub is for agents", i))
			continue
		}
		t, ok := platforms.Factories[pc.Type]
		if !ok {
			errs = append(errs, fmt.Errorf("platforms[%d].type: unknown platform type %q", i, pc.Type))
			continue
		}
		p, err := t.New(pc.Name, pc.Settings, deps)
		if err != nil {
			errs = append(errs, fmt.Errorf("platforms[%d]: %w", i, err))
			continue
		}
		h.platforms[pc.Name] = p
		if r, ok := p.(chat.HTTPReceiver); ok {
			h.receivers[pc.Name] = r.HTTPHandler()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	backoff := chat.Backoff{Deadline: time.Duration(cfg.Delivery.Deadline), Max: time.Duration(cfg.Delivery.MaxBackoff)}
	for i := range cfg.Channels {
		ch := &cfg.Channels[i]
		k := channelKey(ch.Platform, ch.ID)
		h.channels[k] = ch
		rl := ch.RateLimit.WithDefaults()
		h.queues[k] = chat.NewQueue(h.platforms[ch.Platform], ch.Platform, chat.Channel{Name: ch.Name, ID: ch.ID}, chat.QueueOptions{
			PerSecond: rl.PerSecond, Burst: rl.Burst, Backoff: backoff, Metrics: h.dm, Log: log, Health: o.Health,
		})
	}
	return h, nil
}

// Run serves until ctx ends: it connects to NATS (starting the embedded
// server first, if configured), makes sure every cluster's stream, the
// hub's consumers and its bucket exist, and waits for the fleet's lease
// (fleet.Lease: one of several hub replicas leads). While it leads, it
// delivers the agents' messages and listens on every platform. Messages
// still queued when ctx ends are handed back to JetStream for the next
// hub. It returns fleet.ErrLeaseLost when it had to stop leading.
func (h *Hub) Run(ctx context.Context) error {
	if h.nc == nil {
		var srv *server.Server
		if e := h.cfg.Fleet.Embedded; e != nil {
			var err error
			if srv, err = fleet.Embedded(*e); err != nil {
				return err
			}
			defer srv.Shutdown()
			h.log.Info("embedded NATS started", "listen", srv.ClientURL())
		}
		nc, err := h.connect(srv)
		if err != nil {
			return err
		}
		defer nc.Close()
		h.nc = nc
	}
	js, err := jetstream.New(h.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	h.js = js
	retention := time.Duration(h.cfg.Fleet.Retention)
	if err := h.setup(ctx, retention); err != nil {
		return err
	}
	lease, err := fleet.NewLease(ctx, h.js, h.identity, time.Duration(h.cfg.Fleet.LeaseDuration), h.cfg.Fleet.Replicas, h.log)
	if err != nil {
		return err
	}
	lease.URL = h.url
	lease.Leading = func(on bool) {
		h.leading.Store(on)
		h.metrics.leader.Set(map[bool]float64{true: 1}[on])
	}
	h.lease.Store(lease)
	h.log.Info("hub ready", "clusters", len(h.clusters), "platforms", len(h.platforms), "identity", h.identity)
	return lease.Run(ctx, h.lead)
}

// lead is the leader's work until ctx ends: it delivers the agents'
// messages and listens on every platform.
func (h *Hub) lead(ctx context.Context) error {
	// Queues outlive ctx: once the consumers stopped (deferred below, so
	// first), what is queued or being posted gets chat.DrainTimeout to be
	// delivered and recorded; the rest is handed back (deferred). Cutting
	// a post short would leave it posted but unrecorded, and posted again
	// by the next hub.
	qctx, stopQueues := context.WithCancel(context.WithoutCancel(ctx))
	var queues sync.WaitGroup
	for _, q := range h.queues {
		queues.Go(func() { q.Run(qctx) })
	}
	defer func() {
		chat.Drain(h.pending)
		stopQueues()
		queues.Wait()
	}()

	var consumers []jetstream.ConsumeContext
	for _, c := range h.clusters {
		cons, err := h.js.Consumer(ctx, fleet.Stream(c), fleet.Consumer)
		if err != nil {
			return fmt.Errorf("consumer of cluster %s: %w", c, err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) { h.take(c, m) },
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				h.log.Debug("consumer", "cluster", c, "err", err)
			}))
		if err != nil {
			return fmt.Errorf("consume cluster %s: %w", c, err)
		}
		consumers = append(consumers, cc)
	}
	defer func() {
		// Messages already pulled are handed back at once (take naks
		// them while stopping), not left to AckWait.
		h.stopping.Store(true)
		defer h.stopping.Store(false)
		for _, cc := range consumers {
			cc.Drain()
		}
		for _, cc := range consumers {
			select {
			case <-cc.Closed():
			case <-time.After(chat.DrainTimeout):
			}
		}
	}()
	hello, err := h.nc.Subscribe("kubechat.*.hello", h.hello)
	if err != nil {
		return fmt.Errorf("subscribe to hellos: %w", err)
	}
	defer func() { _ = hello.Unsubscribe() }()

	lctx, stopListening := context.WithCancel(ctx)
	defer stopListening()
	errs := make(chan error, len(h.platforms)+1)
	var listeners sync.WaitGroup
	for name, p := range h.platforms {
		listeners.Go(func() {
			if err := p.Listen(lctx, chat.HandlerFunc(h.Handle)); err != nil && lctx.Err() == nil {
				errs <- fmt.Errorf("platform %q: %w", name, err)
			}
		})
	}
	listeners.Go(func() { h.watch(lctx) })
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	stopListening()
	listeners.Wait()
	return runErr
}

func (h *Hub) connect(srv *server.Server) (*nats.Conn, error) {
	opts, err := fleet.Options(h.cfg.Fleet.NATS, "kubechat hub", fleet.HubInbox)
	if err != nil {
		return nil, fmt.Errorf("fleet.%w", err)
	}
	url := h.cfg.Fleet.NATS.URL
	if srv != nil {
		opts = append(opts, nats.InProcessServer(srv))
		url = srv.ClientURL()
	}
	opts = append(opts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { h.log.Warn("disconnected from NATS", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { h.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { h.log.Warn("NATS error", "err", err) }),
	)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	return nc, nil
}

// setup makes sure each cluster's stream and the hub's consumer on it,
// and the hub's bucket, exist. It retries while NATS is not there yet.
func (h *Hub) setup(ctx context.Context, retention time.Duration) error {
	for {
		err := h.ensure(ctx, retention)
		if err == nil {
			return nil
		}
		h.log.Warn("JetStream not set up yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(2 * time.Second):
		}
	}
}

func (h *Hub) ensure(ctx context.Context, retention time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := h.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: fleet.StateBucket, Description: "kubechat hub: what its chat platforms keep",
		History: 1, Storage: jetstream.FileStorage, Replicas: max(h.cfg.Fleet.Replicas, 1),
	})
	if err != nil {
		return fmt.Errorf("bucket %s: %w", fleet.StateBucket, err)
	}
	h.state.kv.Store(&st)
	kv, err := h.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: fleet.Bucket, Description: "kubechat hub: where each agent message was delivered",
		TTL: retention, Storage: jetstream.FileStorage, Replicas: max(h.cfg.Fleet.Replicas, 1),
	})
	if err != nil {
		return fmt.Errorf("bucket %s: %w", fleet.Bucket, err)
	}
	h.kv = kv
	for _, c := range h.clusters {
		if _, err := h.js.CreateOrUpdateStream(ctx, fleet.StreamConfig(c, retention, h.cfg.Fleet.Replicas)); err != nil {
			return fmt.Errorf("stream of cluster %s: %w", c, err)
		}
		if _, err := h.js.CreateOrUpdateConsumer(ctx, fleet.Stream(c), jetstream.ConsumerConfig{
			Durable: fleet.Consumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: AckWait,
			DeliverPolicy: jetstream.DeliverAllPolicy, MaxAckPending: 10000,
		}); err != nil {
			return fmt.Errorf("consumer of cluster %s: %w", c, err)
		}
	}
	return nil
}

// defaultIdentity is the host's name (a pod's name) and a random suffix,
// so that a restarted hub is not taken for the one that held the lease.
func defaultIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "hub"
	}
	return host + "-" + rand.Text()[:8]
}

// pending is the number of messages queued or being posted, over all
// channels.
func (h *Hub) pending() int {
	n := 0
	for _, q := range h.queues {
		n += q.Pending()
	}
	return n
}

// Inbound serves the webhooks of the hub's platforms (Teams' activities,
// Mattermost's button clicks, the web chat) under their paths, as an
// agent does. A hub that does not lead hands each request to the one that
// does (see fleet.Lease.Leader).
func (h *Hub) Inbound() http.Handler {
	mux := http.NewServeMux()
	for name, r := range h.receivers {
		prefix := chat.HTTPPrefix(h.platforms[name])
		mux.Handle(prefix+"/", httpserver.ToLeader(http.StripPrefix(prefix, r), h.leader))
	}
	return mux
}

// leader says whether this hub leads, else where the leader is.
func (h *Hub) leader() (bool, string) {
	if h.leading.Load() {
		return true, ""
	}
	lease := h.lease.Load()
	if lease == nil {
		return false, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url, err := lease.Leader(ctx)
	if err != nil {
		h.log.Debug("where the leading hub is", "err", err)
	}
	return false, url
}
