package hub_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/fleet/hub"
)

// BenchmarkFleet20Clusters: 20 agents publish alerts to one hub (embedded
// NATS with JetStream, the Slack fake), each alert delivered once. It
// reports the hub's throughput (alerts/s, from the first publish to the
// last delivery) and the mean end-to-end latency (publish to delivery, as
// the hub measures it in kubechat_fleet_delivery_seconds).
func BenchmarkFleet20Clusters(b *testing.B) {
	const clusters = 20
	n := startNATS(b)
	srv := slacktest.New()
	b.Cleanup(srv.Close)
	general := srv.ChannelID("general")
	names := make([]string, clusters)
	for i := range names {
		names[i] = fmt.Sprintf("c%02d", i)
	}
	yaml := fmt.Sprintf(`cluster:
  name: hub
platforms:
  - name: ops-slack
    type: slack
    settings:
      botToken: ${HUB_SLACK_BOT}
      appToken: ${HUB_SLACK_APP}
      apiURL: %s
channels:
  - name: general
    platform: ops-slack
    clusters: [%s]
    rateLimit: {perSecond: 1000000, burst: 1000000}
fleet:
  nats:
    url: %s
  clusters:
`, srv.APIURL(), strings.Join(names, ", "), n.url())
	for _, c := range names {
		yaml += "    - name: " + c + "\n"
	}
	cfg := loadConfig(b, yaml)
	reg := prometheus.NewRegistry()
	h, err := hub.New(cfg, slog.New(slog.DiscardHandler), hub.Options{Metrics: reg})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	agents := make([]chat.Platform, clusters)
	for i, c := range names {
		agents[i] = newAgent(b, c, n.url())
	}
	to := chat.Channel{Name: "general", ID: "general"}
	// Warm up: one alert per cluster, so that streams and consumers exist.
	for i, a := range agents {
		publish(b, a, to, chat.Message{Title: "warm " + names[i], Key: "warm-" + names[i]})
	}
	waitFor(b, "the warm-up", func() bool { return len(srv.Messages(general)) == clusters })

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Go(func() {
			for j := i; j < b.N; j += clusters {
				publish(b, a, to, chat.Message{Title: fmt.Sprintf("alert %d", j), Key: fmt.Sprintf("alert-%d", j)})
			}
		})
	}
	wg.Wait()
	waitFor(b, "every alert", func() bool { return len(srv.Messages(general)) >= clusters+b.N })
	elapsed := time.Since(start)
	b.StopTimer()
	require.Len(b, srv.Messages(general), clusters+b.N, "each alert once")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "alerts/s")
	mfs, err := reg.Gather()
	require.NoError(b, err)
	var sum float64
	var count uint64
	for _, mf := range mfs {
		if mf.GetName() == "kubechat_fleet_delivery_seconds" {
			for _, m := range mf.GetMetric() {
				sum += m.GetHistogram().GetSampleSum()
				count += m.GetHistogram().GetSampleCount()
			}
		}
	}
	if count > 0 {
		b.ReportMetric(sum/float64(count)*1000, "ms/alert-e2e")
	}
}
