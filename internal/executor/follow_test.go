package executor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFollows: a follow's time is told once, by the end of a follow that
// started in this process; one that did not (the agent restarted
// meanwhile) tells nothing rather than a wrong time.
func TestFollows(t *testing.T) {
	var f Follows
	require.Empty(t, f.Took("a", "Synced"), "never started: unknown")
	f.Start("a")
	f.Start("a")
	require.Regexp(t, `^Synced [0-9.]+[mµn]?s after kubechat started following it\.\n$`, f.Took("a", "Synced"))
	require.Empty(t, f.Took("a", "Synced"), "ended: forgotten")
	require.Zero(t, f.End("b"))
}
