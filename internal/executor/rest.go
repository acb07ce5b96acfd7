package executor

import (
	"net/http"
	"os"
	"slices"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"

	"github.com/kubechat/kubechat/internal/redact"
)

// Impersonating returns a copy of base that acts as id, speaks JSON (so that
// Secret values can be seen) and records the value of every Secret that
// passes through it in secrets, for masking the output.
func Impersonating(base *rest.Config, id Identity, secrets *redact.Set) *rest.Config {
	cfg := rest.CopyConfig(base)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: id.User, Groups: slices.Clone(id.Groups)}
	cfg.AcceptContentTypes = "application/json"
	cfg.ContentType = "application/json"
	prev := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return redact.Transport(secrets, rt)
	}
	return cfg
}

// ConfigFlags returns command-line client options (a RESTClientGetter) whose
// every client uses cfg, whatever a kubeconfig, server or identity flag
// says: no kubeconfig file is read. A nil cfg gives flags for parsing only.
func ConfigFlags(cfg *rest.Config, cacheDir string) *genericclioptions.ConfigFlags {
	flags := genericclioptions.NewConfigFlags(true).WithDiscoveryBurst(300).WithDiscoveryQPS(50)
	noKubeconfig := os.DevNull
	flags.KubeConfig = &noKubeconfig
	flags.CacheDir = &cacheDir
	if cfg != nil {
		host := cfg.Host
		flags.APIServer = &host
		flags.WrapConfigFn = func(*rest.Config) *rest.Config { return rest.CopyConfig(cfg) }
	}
	return flags
}
