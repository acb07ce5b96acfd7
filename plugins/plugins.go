// Package plugins is the registry of executor implementations: the only
// list of executor types. Adding an executor means one package under plugins/
// and one line here.
package plugins

import (
	"errors"
	"fmt"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/plugins/flux"
	"github.com/kubechat/kubechat/plugins/helm"
	"github.com/kubechat/kubechat/plugins/kubectl"
	"github.com/kubechat/kubechat/plugins/run"
)

// Executors maps an executor type, as written in config, to its factory.
var Executors = map[string]executor.Factory{
	"flux":    flux.New,
	"helm":    helm.New,
	"kubectl": kubectl.New,
	"run":     run.New,
}

// Build builds every executor of cfg, by configured name. With no
// RESTConfig in d it builds them offline, as check-config does.
func Build(cfg *config.Config, d executor.Deps) (map[string]executor.Executor, error) {
	out := map[string]executor.Executor{}
	var errs []error
	for i, ec := range cfg.Executors {
		e, err := Executors[ec.Type](ec.Name, ec.Settings, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("executors[%d]: %w", i, err))
			continue
		}
		out[ec.Name] = e
	}
	return out, errors.Join(errs...)
}
