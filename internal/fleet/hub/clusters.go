package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/fleet"
)

// connectedWithin: a cluster whose agent said hello this recently is connected.
const connectedWithin = 3 * fleet.HeartbeatInterval

// metrics are the hub's, per cluster.
type metrics struct {
	connected *prometheus.GaugeVec
	lastSeen  *prometheus.GaugeVec
	lag       *prometheus.GaugeVec
	latency   *prometheus.HistogramVec
	commands  *prometheus.CounterVec
	dups      *prometheus.CounterVec
	leader    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		connected: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubechat_fleet_cluster_connected",
			Help: "1 when the cluster's agent said hello within the last 30s, else 0.",
		}, []string{"cluster"}),
		lastSeen: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubechat_fleet_cluster_last_seen_timestamp_seconds",
			Help: "When the cluster's agent last said hello (Unix time).",
		}, []string{"cluster"}),
		lag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubechat_fleet_cluster_lag_messages",
			Help: "Messages of the cluster's stream the hub has not yet delivered (waiting or in flight).",
		}, []string{"cluster"}),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubechat_fleet_delivery_seconds",
			Help:    "Time from an agent's publish to the hub's delivery of the message.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600},
		}, []string{"cluster"}),
		commands: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kubechat_fleet_commands_total",
			Help: "Commands the hub handed to a cluster's agent, by result: ok, not_connected, timeout, error.",
		}, []string{"cluster", "result"}),
		leader: f.NewGauge(prometheus.GaugeOpts{
			Name: "kubechat_leader",
			Help: "1 while this replica runs the leader's work (for a hub: delivery and the chat connections).",
		}),
		dups: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kubechat_fleet_duplicates_total",
			Help: "Messages JetStream handed the hub again after their delivery was recorded; dropped.",
		}, []string{"cluster"}),
	}
}

func (m *metrics) duplicate(cluster string) { m.dups.WithLabelValues(cluster).Inc() }

// hello records an agent's heartbeat.
func (h *Hub) hello(msg *nats.Msg) {
	var hi fleet.Hello
	if err := json.Unmarshal(msg.Data, &hi); err != nil || fleet.HelloSubject(hi.Cluster) != msg.Subject || !slices.Contains(h.clusters, hi.Cluster) {
		return // not one of ours, or a hello that names another cluster
	}
	now := time.Now()
	h.mu.Lock()
	h.seen[hi.Cluster] = now
	h.mu.Unlock()
	h.metrics.lastSeen.WithLabelValues(hi.Cluster).Set(float64(now.Unix()))
	h.metrics.connected.WithLabelValues(hi.Cluster).Set(1)
}

// clusterStatus is what `clusters` shows of one cluster.
type clusterStatus struct {
	name      string
	connected bool
	seen      time.Time
	lag       uint64
	lagKnown  bool
}

// status reads each cluster's connection and lag, and updates the metrics.
func (h *Hub) status(ctx context.Context, clusters []string) []clusterStatus {
	out := make([]clusterStatus, 0, len(clusters))
	for _, c := range clusters {
		h.mu.Lock()
		seen := h.seen[c]
		h.mu.Unlock()
		s := clusterStatus{name: c, seen: seen, connected: !seen.IsZero() && time.Since(seen) < connectedWithin}
		if !s.connected {
			h.metrics.connected.WithLabelValues(c).Set(0)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if cons, err := h.js.Consumer(cctx, fleet.Stream(c), fleet.Consumer); err == nil {
			if info, err := cons.Info(cctx); err == nil {
				s.lag, s.lagKnown = info.NumPending+uint64(info.NumAckPending), true
				h.metrics.lag.WithLabelValues(c).Set(float64(s.lag))
			}
		}
		cancel()
		out = append(out, s)
	}
	return out
}

// watch updates the per-cluster metrics until ctx ends.
func (h *Hub) watch(ctx context.Context) {
	t := time.NewTicker(fleet.HeartbeatInterval)
	defer t.Stop()
	for {
		h.status(ctx, h.clusters)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// list answers "clusters": each of the channel's clusters, whether its
// agent is connected, when it was last seen, and its lag.
func (h *Hub) list(ctx context.Context, clusters []string) chat.Message {
	m := chat.Message{Title: "Clusters", Level: chat.LevelInfo, Context: "kubechat hub"}
	for _, s := range h.status(ctx, clusters) {
		state, seen, lag := "not connected", "never", "unknown"
		if s.connected {
			state = "connected"
		}
		if !s.seen.IsZero() {
			seen = time.Since(s.seen).Round(time.Second).String() + " ago"
		}
		if s.lagKnown {
			lag = fmt.Sprintf("%d messages", s.lag)
		}
		if !s.connected {
			m.Level = chat.LevelWarning
		}
		m.Sections = append(m.Sections, chat.Section{Header: s.name, Fields: []chat.Field{
			{Name: "state", Value: state}, {Name: "last seen", Value: seen}, {Name: "lag", Value: lag},
		}})
	}
	return m
}
