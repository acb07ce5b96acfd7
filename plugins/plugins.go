// Package plugins is the registry of executor implementations: the only
// list of executor types. Adding an executor means one package under plugins/
// and one line here.
package plugins

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/plugins/ai"
	"github.com/kubechat/kubechat/plugins/alerts"
	"github.com/kubechat/kubechat/plugins/argocd"
	"github.com/kubechat/kubechat/plugins/flux"
	"github.com/kubechat/kubechat/plugins/github"
	"github.com/kubechat/kubechat/plugins/helm"
	"github.com/kubechat/kubechat/plugins/kubectl"
	"github.com/kubechat/kubechat/plugins/run"
)

// Type is what the registry knows of one executor type: the factory that
// builds an executor, and a zero value of the Settings struct that the
// factory decodes the executor's settings block into. The config schema
// is generated from Settings, so the two cannot drift apart.
type Type struct {
	New      executor.Factory
	Settings any
	// ClusterFree says the type's executors never reach the cluster (they
	// implement executor.ClusterFree), so config validation lets a channel
	// bound only to such executors go without an identity.
	ClusterFree bool
}

// Executors maps an executor type, as written in config, to its factory
// and settings.
var Executors = map[string]Type{
	"ai":      {ai.New, ai.Settings{}, false},
	"argocd":  {argocd.New, argocd.Settings{}, false},
	"explain": {alerts.NewExplain, alerts.Settings{}, true},
	"flux":    {flux.New, flux.Settings{}, false},
	"github":  {github.New, github.Settings{}, false},
	"helm":    {helm.New, helm.Settings{}, false},
	"kubectl": {kubectl.New, kubectl.Settings{}, false},
	"run":     {run.New, run.Settings{}, false},
	"silence": {alerts.NewSilence, alerts.Settings{}, true},
}

// ClusterFreeTypes are the executor types whose executors never reach the
// cluster.
func ClusterFreeTypes() []string {
	var out []string
	for name, t := range Executors {
		if t.ClusterFree {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Build builds every executor of cfg, by configured name. With no
// RESTConfig in d it builds them offline, as check-config does.
func Build(cfg *config.Config, d executor.Deps) (map[string]executor.Executor, error) {
	out := map[string]executor.Executor{}
	var errs []error
	for i, ec := range cfg.Executors {
		e, err := Executors[ec.Type].New(ec.Name, ec.Settings, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("executors[%d]: %w", i, err))
			continue
		}
		out[ec.Name] = e
	}
	return out, errors.Join(errs...)
}
