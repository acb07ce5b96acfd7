package health

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestOutageIsNotReadyAfterGrace: a component unhealthy past the grace
// period makes the agent not ready; liveness never looks at it.
func TestOutageIsNotReadyAfterGrace(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := New(2 * time.Minute)
	tr.now = func() time.Time { return now }
	tr.SetHealthy("platform/slack", true, "")
	require.NoError(t, tr.Ready())

	tr.SetHealthy("platform/slack", false, "socket closed")
	now = now.Add(time.Minute)
	require.NoError(t, tr.Ready(), "within the grace period")
	now = now.Add(90 * time.Second)
	require.ErrorContains(t, tr.Ready(), "platform/slack (unhealthy for 2m30s: socket closed)")
	require.NoError(t, tr.Healthy(), "an outage is not a reason to restart")

	tr.SetHealthy("platform/slack", true, "")
	require.NoError(t, tr.Ready())
	// A new outage starts a new clock.
	tr.SetHealthy("platform/slack", false, "again")
	require.NoError(t, tr.Ready())
}

func TestReady(t *testing.T) {
	tr := New(time.Minute)
	tr.Register("source")
	tr.Register("http")
	require.EqualError(t, tr.Ready(), "not ready: http, source")
	tr.SetReady("http", true)
	require.EqualError(t, tr.Ready(), "not ready: source")
	tr.SetReady("source", true)
	require.NoError(t, tr.Ready())
}

// TestStuckLoopFailsLiveness: only a loop that stopped turning fails /healthz.
func TestStuckLoopFailsLiveness(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := New(time.Minute)
	tr.now = func() time.Time { return now }
	tr.Loop("router", 30*time.Second)
	now = now.Add(20 * time.Second)
	tr.Beat("router")
	now = now.Add(20 * time.Second)
	require.NoError(t, tr.Healthy())
	now = now.Add(20 * time.Second)
	require.ErrorContains(t, tr.Healthy(), "router: stuck for 40s")
	tr.Done("router")
	require.NoError(t, tr.Healthy(), "a loop that ended on purpose is not stuck")
}

func TestMetrics(t *testing.T) {
	tr := New(time.Minute)
	tr.SetHealthy("platform/slack", true, "")
	tr.SetHealthy("delivery/hook", false, "503")
	tr.Register("source/pods")
	want := `
# HELP kubechat_platform_up 1 while a chat platform's connection (if it has one) is up and its deliveries go through.
# TYPE kubechat_platform_up gauge
kubechat_platform_up{platform="hook"} 0
kubechat_platform_up{platform="slack"} 1
# HELP kubechat_source_synced 1 while a source's watches are synced and running.
# TYPE kubechat_source_synced gauge
kubechat_source_synced{source="pods"} 0
`
	require.NoError(t, testutil.CollectAndCompare(tr, strings.NewReader(want), "kubechat_platform_up", "kubechat_source_synced"))
}

func TestNilTrackerRecordsNothing(t *testing.T) {
	var tr *Tracker
	tr.SetHealthy("platform/x", false, "down") // must not panic
	tr.Beat("x")
}
