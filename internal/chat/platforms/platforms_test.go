package platforms

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/configs"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/plugins"
)

// TestEveryPlatformHasAnExample enforces the recipe for adding a platform:
// configs/<type>.yaml exists and loads.
func TestEveryPlatformHasAnExample(t *testing.T) {
	known := config.Known{}
	for name := range Factories {
		known.PlatformTypes = append(known.PlatformTypes, name)
	}
	for name := range plugins.Executors {
		known.ExecutorTypes = append(known.ExecutorTypes, name)
	}
	for k, v := range configs.ExampleEnv {
		t.Setenv(k, v)
	}
	for name := range Factories {
		t.Run(name, func(t *testing.T) {
			_, err := configs.Examples.Open(name + ".yaml")
			require.NoError(t, err, "configs/%s.yaml must exist", name)
			_, err = config.Load(known, filepath.Join("..", "..", "..", "configs", name+".yaml"))
			require.NoError(t, err)
		})
	}
}
