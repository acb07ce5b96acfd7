package alerting

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestJobQueueCountsRunningJobs: a drain waits for an action that is
// running, not only for those still queued, so that its reply is sent.
func TestJobQueueCountsRunningJobs(t *testing.T) {
	q := newJobQueue()
	q.push(func(context.Context, *Pipeline) {})
	q.push(func(context.Context, *Pipeline) {})
	require.Equal(t, 2, q.len())
	f, ok := q.pop()
	require.True(t, ok)
	require.Equal(t, 2, q.len(), "one queued, one running")
	f(t.Context(), nil)
	q.done()
	require.Equal(t, 1, q.len())
}
