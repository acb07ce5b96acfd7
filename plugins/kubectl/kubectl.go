// Package kubectl is the kubectl executor. It runs kubectl in-process, with
// the command tree of k8s.io/kubectl: no binary, no subprocess, no shell.
// Every call impersonates the caller's identity over the agent's connection,
// so Kubernetes RBAC is the second gate after kubechat's policy, and the
// values of any Secret that passes through the client are masked in the output.
package kubectl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/redact"
)

// Settings configure the kubectl executor.
type Settings struct {
	// CacheDir holds the discovery cache shared by all calls (default: a
	// directory under the system temp dir).
	CacheDir string `yaml:"cacheDir"`
}

// Executor runs kubectl commands.
type Executor struct {
	name     string
	base     *rest.Config
	cacheDir string
}

// New builds the kubectl executor. It does not contact the cluster.
func New(name string, raw config.Raw, d executor.Deps) (executor.Executor, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("kubectl executor %q: %w", name, err)
	}
	if s.CacheDir == "" {
		s.CacheDir = filepath.Join(os.TempDir(), "kubechat-kubectl-cache")
	}
	return &Executor{name: name, base: d.RESTConfig, cacheDir: s.CacheDir}, nil
}

// Name is the configured executor name.
func (e *Executor) Name() string { return e.name }

// Subcommands that cannot work through a chat message (they need a
// terminal, an editor, a local file or a long-lived connection), or that
// would reach outside the cluster connection kubechat gives them.
var refused = map[string]string{
	"attach":       "it needs an interactive terminal",
	"exec":         "it needs an interactive terminal",
	"debug":        "it needs an interactive terminal",
	"edit":         "it needs an editor; use patch or apply",
	"port-forward": "it needs a long-lived local connection",
	"proxy":        "it needs a long-lived local server",
	"cp":           "it reads and writes local files",
	"config":       "it changes the agent's kubeconfig",
	"plugin":       "plugins are binaries, and kubechat runs none",
	"completion":   "shell completion has no use in chat",
	"kuberc":       "it changes the agent's kubectl preferences",
	"alpha":        "alpha commands are not supported",
}

// Connection and identity flags would let a caller change who kubectl acts
// as, or where it connects: the executor owns those.
var connectionFlags = []string{
	"as", "as-group", "as-uid", "as-user-extra", "kubeconfig", "server", "s", "token", "user", "username", "password",
	"context", "cluster", "certificate-authority", "client-certificate", "client-key", "insecure-skip-tls-verify",
	"tls-server-name", "cache-dir", "proxy-url", "kuberc", "profile", "profile-output",
}

// Analyze parses args with kubectl's own flag definitions and says what the
// command would do, for policy. It runs nothing.
func (e *Executor) Analyze(args []string) (executor.Action, error) {
	root, flags := newCommand(genericiooptions.NewTestIOStreamsDiscard(), nil, e.cacheDir)
	sub, rest, err := root.Find(args)
	if err != nil || sub == root {
		if len(args) == 0 {
			return executor.Action{}, errors.New("kubectl needs a subcommand, for example: kubectl get pods")
		}
		return executor.Action{}, fmt.Errorf("unknown kubectl command %q", firstWord(args))
	}
	if why, ok := refused[topLevel(sub)]; ok {
		return executor.Action{}, fmt.Errorf("kubectl %s is not available in chat: %s", topLevel(sub), why)
	}
	sub.InitDefaultHelpFlag()
	if err := sub.ParseFlags(rest); err != nil {
		return executor.Action{}, fmt.Errorf("kubectl %s: %w", sub.Name(), err)
	}
	var bad []string
	sub.Flags().Visit(func(f *pflag.Flag) {
		if slices.Contains(connectionFlags, f.Name) {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return executor.Action{}, fmt.Errorf("the flag %s is not allowed: kubechat decides how kubectl connects and who it acts as", strings.Join(bad, ", "))
	}
	a := executor.Action{Verb: verbOf(sub)}
	pos := sub.Flags().Args()
	if len(pos) > 0 && takesResource(a.Verb) {
		a.Resource = resourceOf(pos[0])
	}
	if flags.Namespace != nil {
		a.Namespace = *flags.Namespace
	}
	if f := sub.Flags().Lookup("all-namespaces"); f != nil && f.Value.String() == "true" {
		a.AllNamespaces = true
	}
	for _, name := range []string{"watch", "watch-only", "follow"} {
		if f := sub.Flags().Lookup(name); f != nil && f.Value.String() == "true" {
			a.Streaming = true
		}
	}
	return a, nil
}

// Execute runs one kubectl command as req.Identity. It returns when the
// command ends or ctx is done; requests carry the context's remaining time
// as their timeout, so a call abandoned on cancellation ends soon after.
func (e *Executor) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	args := withNamespace(req.Args, req.Namespace)
	return executor.RunInProcess(ctx, "kubectl", e.base, req, func(cfg *rest.Config, _ *redact.Set, stdout, stderr io.Writer) int {
		return e.run(ctx, cfg, args, stdout, stderr)
	})
}

// fatalExit carries kubectl's fatal error out of the command: kubectl
// would call os.Exit, so its fatal handler is pointed at a panic that run
// recovers in the same goroutine.
type fatalExit struct {
	msg  string
	code int
}

var installFatal sync.Once

func (e *Executor) run(ctx context.Context, cfg *rest.Config, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatalExit)
			if !ok {
				fmt.Fprintf(stderr, "error: kubectl failed: %v\n", r)
				code = 1
				return
			}
			if f.msg != "" {
				if !strings.HasSuffix(f.msg, "\n") {
					f.msg += "\n"
				}
				fmt.Fprint(stderr, f.msg)
			}
			code = f.code
		}
	}()
	root, _ := newCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: stdout, ErrOut: stderr}, cfg, e.cacheDir)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

// kubectlGlobals guards the package variables of kubectl's command tree
// (its profiling flags and state): building a tree writes them and the
// root's pre- and post-run hooks read and write them, so concurrent
// commands (a typed command and an action, say) take turns there. The
// commands themselves run in parallel.
var kubectlGlobals sync.Mutex

// newCommand builds a fresh kubectl command tree whose every client uses
// cfg, whatever kubeconfig, server or identity flags say.
func newCommand(streams genericiooptions.IOStreams, cfg *rest.Config, cacheDir string) (*cobra.Command, *genericclioptions.ConfigFlags) {
	// Building a tree reads kubectl's fatal-error handler (CheckErr), so
	// ours is installed first, once, for every command.
	installFatal.Do(func() {
		cmdutil.BehaviorOnFatal(func(msg string, code int) { panic(fatalExit{msg: msg, code: code}) })
	})
	flags := executor.ConfigFlags(cfg, cacheDir)
	kubectlGlobals.Lock()
	root := kubectlcmd.NewKubectlCommand(kubectlcmd.KubectlOptions{
		ConfigFlags: flags,
		IOStreams:   streams,
		Arguments:   []string{"kubectl"},
	})
	kubectlGlobals.Unlock()
	for _, hook := range []*func(*cobra.Command, []string) error{&root.PersistentPreRunE, &root.PersistentPostRunE} {
		if f := *hook; f != nil {
			*hook = func(c *cobra.Command, args []string) error {
				kubectlGlobals.Lock()
				defer kubectlGlobals.Unlock()
				return f(c, args)
			}
		}
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SilenceUsage = true
	root.SilenceErrors = true
	return root, flags
}

// withNamespace adds "-n ns" unless args already choose a namespace.
func withNamespace(args []string, ns string) []string {
	if ns == "" {
		return args
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-n" || a == "--namespace" || strings.HasPrefix(a, "--namespace=") || (strings.HasPrefix(a, "-n") && len(a) > 2) ||
			a == "-A" || a == "--all-namespaces" || strings.HasPrefix(a, "--all-namespaces=") {
			return args
		}
	}
	return append(slices.Clone(args), "-n", ns)
}

func firstWord(args []string) string {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return args[0]
}

// topLevel is the first subcommand under kubectl ("rollout" for "rollout undo").
func topLevel(c *cobra.Command) string {
	for c.HasParent() && c.Parent().HasParent() {
		c = c.Parent()
	}
	return c.Name()
}

// verbOf names the command as policy sees it: "get", "rollout restart", "auth can-i".
func verbOf(c *cobra.Command) string {
	var parts []string
	for ; c.HasParent(); c = c.Parent() {
		parts = append([]string{c.Name()}, parts...)
	}
	return strings.Join(parts, " ")
}

func takesResource(verb string) bool {
	switch strings.Fields(verb)[0] {
	case "get", "describe", "delete", "edit", "patch", "label", "annotate", "scale", "explain", "rollout", "set", "autoscale", "expose", "wait":
		return true
	}
	return false
}

// resourceOf turns "pods/web" or "deploy,svc" into "pods/web"'s type part.
func resourceOf(arg string) string {
	r, _, _ := strings.Cut(arg, "/")
	return strings.ToLower(r)
}
