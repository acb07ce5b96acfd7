package state

import (
	"fmt"
	"sync"
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

// TestFirstWritesAtOnce: writers that all find no ConfigMap all save their
// key: in one store they take turns, and one whose create finds another
// writer's ConfigMap (another replica's) writes into it instead of failing.
func TestFirstWritesAtOnce(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	for round := range 5 {
		ns := fmt.Sprintf("state-race-%d", round)
		require.NoError(t, env.CreateNamespace(ctx, ns))
		shared := New(env.Client, ns, "kubechat-state")
		require.NoError(t, shared.Load(ctx))
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			s := shared
			if i%2 == 1 {
				s = New(env.Client, ns, "kubechat-state") // another replica's
			}
			wg.Go(func() { errs[i] = s.Set(ctx, fmt.Sprintf("k%d", i), "v") })
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		fresh := New(env.Client, ns, "kubechat-state")
		require.NoError(t, fresh.Load(ctx))
		for i := range errs {
			_, ok := fresh.Get(fmt.Sprintf("k%d", i))
			require.True(t, ok, "k%d saved", i)
		}
	}
}
