// Package helm is the Helm executor. It runs Helm in-process with the Helm
// SDK (helm.sh/helm/v3/pkg/action): no binary, no subprocess, no shell, and
// nothing downloaded at runtime. Every call impersonates the caller's
// identity over the agent's connection, so Kubernetes RBAC is the second
// gate after kubechat's policy. Output follows the helm CLI's formats
// (table, yaml, json), with the values of Secrets masked: those the client
// read, and those rendered into the release's manifest and hooks.
//
// Read commands: list, status, history, get values|manifest|notes|hooks|all.
// Write commands (rollback, uninstall, upgrade of the installed chart,
// test) are off unless a channel's policy lists them, and each asks for a
// confirmation button before it runs.
package helm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"k8s.io/client-go/rest"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/redact"
)

// Settings configure the Helm executor.
type Settings struct {
	// CacheDir holds the discovery cache shared by all calls (default: a
	// directory under the system temp dir).
	CacheDir string `yaml:"cacheDir"`
	// Driver is Helm's release storage: "secret" (Helm's default) or "configmap".
	Driver string `yaml:"driver"`
	// MaxHistory caps the revisions rollback and upgrade keep per release
	// (default 10, as the helm CLI; 0 keeps all).
	MaxHistory *int `yaml:"maxHistory"`
}

// Executor runs helm commands.
type Executor struct {
	name       string
	base       *rest.Config
	cacheDir   string
	driver     string
	maxHistory int
	log        *slog.Logger
}

// New builds the Helm executor. It does not contact the cluster.
func New(name string, raw config.Raw, d executor.Deps) (executor.Executor, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("helm executor %q: %w", name, err)
	}
	switch s.Driver {
	case "":
		s.Driver = "secret"
	case "secret", "configmap":
	default:
		return nil, fmt.Errorf("helm executor %q: settings.driver: %q is not a release storage kubechat reads; use secret or configmap", name, s.Driver)
	}
	if s.CacheDir == "" {
		s.CacheDir = filepath.Join(os.TempDir(), "kubechat-helm-cache")
	}
	maxHistory := 10
	if s.MaxHistory != nil {
		if *s.MaxHistory < 0 {
			return nil, fmt.Errorf("helm executor %q: settings.maxHistory: %d is negative", name, *s.MaxHistory)
		}
		maxHistory = *s.MaxHistory
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Executor{name: name, base: d.RESTConfig, cacheDir: s.CacheDir, driver: s.Driver, maxHistory: maxHistory,
		log: log.With("executor", name)}, nil
}

// Name is the configured executor name.
func (e *Executor) Name() string { return e.name }

// readVerbs are what a policy that lists no verbs allows.
var readVerbs = []string{"list", "status", "history", "get values", "get manifest", "get notes", "get hooks", "get all"}

// writeVerbs change releases; each runs only after a confirmation click.
var writeVerbs = []string{"rollback", "uninstall", "upgrade", "test"}

// ReadOnlyVerbs are the read commands: list, status, history and get.
func (e *Executor) ReadOnlyVerbs() []string { return readVerbs }

// Analyze parses args with the command's flag definitions and says what it
// would do, for policy. It runs nothing.
func (e *Executor) Analyze(_ context.Context, args []string) (executor.Analysis, error) {
	cmd, err := parse(args, nil)
	if err != nil {
		return executor.Analysis{}, err
	}
	a := executor.Analysis{Verb: cmd.verb, AllNamespaces: cmd.allNamespaces}
	if cmd.namespace != "" {
		a.Namespaces = []string{cmd.namespace}
	}
	for _, w := range writeVerbs {
		if cmd.verb == w {
			a.Confirm = true
		}
	}
	return a, nil
}

// OpaqueResources says why policy.resources cannot restrict helm.
func (e *Executor) OpaqueResources() string {
	return "a release's chart decides which objects helm reads and changes; restrict helm with verbs and namespaces"
}

// Execute runs one helm command as req.Identity. It returns when the
// command ends or ctx is done; requests carry the context's remaining time
// as their timeout, so a call abandoned on cancellation ends soon after.
func (e *Executor) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	return executor.RunInProcess(ctx, "helm", e.base, req, func(cfg *rest.Config, secrets *redact.Set, stdout, stderr io.Writer) int {
		return e.run(ctx, cfg, req, secrets, stdout, stderr)
	})
}

// run parses and runs args, writing as the helm CLI would; it returns the
// exit code. Output is masked by the caller, once everything that reveals
// a secret value (the client's reads, the release's manifest) was seen.
func (e *Executor) run(ctx context.Context, cfg *rest.Config, req executor.Request, secrets *redact.Set, stdout, stderr io.Writer) int {
	var ac action.Configuration
	env := &runEnv{ctx: ctx, cfg: &ac, out: stdout, secrets: secrets, maxHistory: e.maxHistory}
	// connect runs once the flags are parsed, before the command: it
	// readies the Configuration the command's client already points at.
	env.connect = func(namespace string, allNamespaces bool) error {
		if namespace == "" {
			namespace = req.Namespace
		}
		if namespace == "" {
			namespace = "default"
		}
		env.namespace = namespace
		storageNS := namespace
		if allNamespaces {
			storageNS = ""
		}
		flags := executor.ConfigFlags(cfg, e.cacheDir)
		flags.Namespace = &namespace
		debug := func(format string, v ...any) { e.log.Debug("helm", "msg", fmt.Sprintf(format, v...)) }
		return ac.Init(flags, storageNS, e.driver, debug)
	}
	if _, err := parse(req.Args, env); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	return 0
}

// connectionFlags are helm's global flags that choose where and as whom it
// connects; kubechat decides that, so they are refused with a reason
// rather than as unknown.
var connectionFlags = map[string]bool{
	"kubeconfig": true, "kube-context": true, "kube-token": true, "kube-as-user": true, "kube-as-group": true,
	"kube-apiserver": true, "kube-ca-file": true, "kube-tls-server-name": true, "kube-insecure-skip-tls-verify": true,
	"registry-config": true, "repository-config": true, "repository-cache": true, "burst-limit": true, "qps": true,
}

// refusedConnectionFlag names the first connection flag in args.
func refusedConnectionFlag(args []string) string {
	for _, a := range args {
		if a == "--" {
			break
		}
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if connectionFlags[name] {
				return "--" + name
			}
		}
	}
	return ""
}
