package executor

import (
	"errors"
	"testing"

	"github.com/kubechat/kubechat/internal/redact"
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

func TestSettle(t *testing.T) {
	secrets := redact.NewSet()
	secrets.Add("hunter2-s3cret")
	settle := func(f func() (Result, error)) (res Result, err error) {
		defer func() { Settle(recover(), "x get", secrets, 10, &res, &err) }()
		return f()
	}

	res, err := settle(func() (Result, error) { panic("index out of range") })
	require.EqualError(t, err, "x get failed: index out of range", "a panic costs one command")
	require.Equal(t, Result{}, res)

	cause := errors.New("dry run refused: value hunter2-s3cret is invalid")
	res, err = settle(func() (Result, error) {
		return Result{Output: "hunter2-s3cret and more", Errors: "hunter2-s3cret"}, cause
	})
	require.NotContains(t, err.Error(), "hunter2-s3cret")
	require.ErrorIs(t, err, cause, "the masked error still wraps its cause")
	require.NotContains(t, res.Output, "hunter2")
	require.NotContains(t, res.Errors, "hunter2")
	require.True(t, res.Truncated, "capped after masking")
}
