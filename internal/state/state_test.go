package state

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Nodes: 1}) }

func TestStoreSurvivesARestart(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	require.NoError(t, env.CreateNamespace(ctx, "kubechat"))
	s := New(env.Client, "kubechat", "kubechat-state")
	require.NoError(t, s.Load(ctx), "a missing ConfigMap is an empty store")
	_, ok := s.Get("notifications.ops")
	require.False(t, ok)
	require.NoError(t, s.Set(ctx, "notifications.ops", "off"))
	require.NoError(t, s.Set(ctx, "other", "x"))
	require.NoError(t, s.Set(ctx, "other", ""))

	restarted := New(env.Client, "kubechat", "kubechat-state")
	require.NoError(t, restarted.Load(ctx))
	v, ok := restarted.Get("notifications.ops")
	require.True(t, ok)
	require.Equal(t, "off", v)
	_, ok = restarted.Get("other")
	require.False(t, ok, "an empty value deletes the key")
}
