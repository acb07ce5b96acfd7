package executor

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
)

func TestCapped(t *testing.T) {
	r := Result{Output: "héllo world", Errors: "ok"}.Capped(2)
	require.Equal(t, "h", r.Output, "a cut never splits a character")
	require.Equal(t, "ok", r.Errors)
	require.True(t, r.Truncated)

	r = Result{Output: "short"}.Capped(0)
	require.Equal(t, "short", r.Output)
	require.False(t, r.Truncated)
}

func TestCheckIdentity(t *testing.T) {
	base := &rest.Config{Host: "https://127.0.0.1"}
	require.ErrorContains(t, CheckIdentity("flux", nil, Identity{User: "u"}), "flux: the agent has no cluster connection")
	err := CheckIdentity("flux", base, Identity{})
	require.True(t, errors.Is(err, ErrDenied))
	require.ErrorContains(t, err, "no identity to act as")
	require.NoError(t, CheckIdentity("flux", base, Identity{User: "u"}))
	require.NoError(t, CheckIdentity("flux", base, Identity{Own: true}), "a command pod acts as its own ServiceAccount")
}
