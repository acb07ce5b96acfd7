package health

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHealthyAfterGrace(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := New(2 * time.Minute)
	tr.now = func() time.Time { return now }
	tr.Register("slack")
	require.NoError(t, tr.Healthy())

	tr.SetHealthy("slack", false, "socket closed")
	now = now.Add(time.Minute)
	require.NoError(t, tr.Healthy(), "within the grace period")
	now = now.Add(90 * time.Second)
	err := tr.Healthy()
	require.ErrorContains(t, err, "slack: unhealthy for 2m30s: socket closed")

	tr.SetHealthy("slack", true, "")
	require.NoError(t, tr.Healthy())
	// A new outage starts a new clock.
	tr.SetHealthy("slack", false, "again")
	require.NoError(t, tr.Healthy())
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

func TestNilTrackerRecordsNothing(t *testing.T) {
	var tr *Tracker
	tr.SetHealthy("platform/x", false, "down") // must not panic
}
