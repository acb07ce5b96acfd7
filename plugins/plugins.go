// Package plugins is the registry of executor implementations: the only
// list of executor types. Adding an executor means one package under plugins/
// and one line here.
package plugins

import (
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
