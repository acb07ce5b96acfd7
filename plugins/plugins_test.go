package plugins

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/configs"
	"github.com/kubechat/kubechat/internal/chat/platforms"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
)

// TestEveryExecutorHasAnExample enforces the recipe for adding an
// executor: configs/<type>.yaml exists, loads, and configures that type.
func TestEveryExecutorHasAnExample(t *testing.T) {
	known := config.Known{}
	for name := range platforms.Factories {
		known.PlatformTypes = append(known.PlatformTypes, name)
	}
	for name := range Executors {
		known.ExecutorTypes = append(known.ExecutorTypes, name)
	}
	known.ClusterFreeTypes = ClusterFreeTypes()
	for k, v := range configs.ExampleEnv {
		t.Setenv(k, v)
	}
	for name := range Executors {
		t.Run(name, func(t *testing.T) {
			_, err := configs.Examples.Open(name + ".yaml")
			require.NoError(t, err, "configs/%s.yaml must exist", name)
			cfg, err := config.Load(known, filepath.Join("..", "configs", name+".yaml"))
			require.NoError(t, err)
			require.True(t, slices.ContainsFunc(cfg.Executors, func(e config.Executor) bool { return e.Type == name }),
				"configs/%s.yaml configures no %s executor", name, name)
		})
	}
}

// TestClusterFreeAgrees: the registry's ClusterFree flag, which lets a
// channel go without an identity at load, says what the executors
// themselves say at run time. A type that builds without settings is
// checked both ways; a cluster-free type must build so.
func TestClusterFreeAgrees(t *testing.T) {
	for name, typ := range Executors {
		e, err := typ.New(name, config.Raw{}, executor.Deps{})
		if err != nil {
			require.False(t, typ.ClusterFree, "%s: a cluster-free executor builds without settings or a cluster: %v", name, err)
			continue
		}
		require.Equal(t, typ.ClusterFree, !executor.NeedsIdentity(e), name)
	}
	require.Equal(t, []string{"explain", "silence"}, ClusterFreeTypes())
}
