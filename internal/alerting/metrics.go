package alerting

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/kubechat/kubechat/internal/chat"
)

// Metrics are the alerting side's metrics (see docs/metrics.md). One
// agent builds them once and hands them to every pipeline it builds, so
// that a config reload, which builds a new pipeline, keeps counting in the
// same series.
type Metrics struct {
	received  *prometheus.CounterVec
	inhibited *prometheus.CounterVec
	delivery  *chat.DeliveryMetrics

	mu        sync.Mutex
	pipelines map[*Pipeline]bool // whose queues kubechat_queue_* report
}

// NewMetrics registers the alerting metrics with reg (nil: kept unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		delivery:  chat.NewDeliveryMetrics(reg),
		pipelines: map[*Pipeline]bool{},
		received: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "kubechat_events_received_total",
			Help: "Events from each source, before bindings and filters decide where they go.",
		}, []string{"source"}),
		inhibited: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "kubechat_alerts_inhibited_total",
			Help: "Alerts not posted because an inhibit rule's Alertmanager alert fired, by rule.",
		}, []string{"rule"}),
	}
	if reg != nil {
		reg.MustRegister(queueCollector{m})
	}
	return m
}

func (m *Metrics) attach(p *Pipeline) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pipelines[p] = true
}

func (m *Metrics) detach(p *Pipeline) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pipelines, p)
}

var (
	queueDepth  = prometheus.NewDesc("kubechat_queue_depth", "Messages queued or being delivered, by channel.", []string{"platform", "channel"}, nil)
	queueOldest = prometheus.NewDesc("kubechat_queue_oldest_seconds", "Age of the oldest message waiting in a channel's queue (0 when none waits).", []string{"platform", "channel"}, nil)
)

// queueCollector reports every channel's queue, over the pipelines that
// are attached: while a reload hands over, a channel's messages may wait
// in both the old pipeline and the new one, and count once each.
type queueCollector struct{ m *Metrics }

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepth
	ch <- queueOldest
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	type channel struct{ platform, name string }
	type depth struct {
		n      int
		oldest time.Time
	}
	byChannel := map[channel]depth{}
	c.m.mu.Lock()
	for p := range c.m.pipelines {
		for _, s := range p.senders {
			k := channel{s.b.platform.Name(), s.b.channel.Name}
			d := byChannel[k]
			d.n += s.q.Pending()
			if t := s.q.Oldest(); !t.IsZero() && (d.oldest.IsZero() || t.Before(d.oldest)) {
				d.oldest = t
			}
			byChannel[k] = d
		}
	}
	c.m.mu.Unlock()
	for k, d := range byChannel {
		age := 0.0
		if !d.oldest.IsZero() {
			age = time.Since(d.oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(queueDepth, prometheus.GaugeValue, float64(d.n), k.platform, k.name)
		ch <- prometheus.MustNewConstMetric(queueOldest, prometheus.GaugeValue, age, k.platform, k.name)
	}
}
