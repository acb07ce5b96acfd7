// Package kubectl is the kubectl executor. It runs kubectl in-process, with
// the command tree of k8s.io/kubectl: no binary, no subprocess, no shell.
// Every call impersonates the caller's identity over the agent's connection,
// so Kubernetes RBAC is the second gate after kubechat's policy, and the
// values of any Secret that passes through the client are masked in the output.
package kubectl

import (
	"context"

	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/kubectl/pkg/cmd/auth"
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
	resolver resolver
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

// Execute runs one kubectl command as req.Identity. It returns when the
// command ends or ctx is done; requests carry the context's remaining time
// as their timeout, so a call abandoned on cancellation ends soon after.
// The client never sees a Secret's values (executor.RunInProcessMasked),
// so no template, jsonpath or raw request can print or transform them.
func (e *Executor) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	return executor.RunInProcessMasked(ctx, "kubectl", e.base, req, func(cfg *rest.Config, _ *redact.Set, stdout, stderr io.Writer) int {
		return e.run(ctx, cfg, req, stdout, stderr)
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

func (e *Executor) run(ctx context.Context, cfg *rest.Config, req executor.Request, stdout, stderr io.Writer) (code int) {
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
	// The same parse and allow-list as Analyze, on a tree of its own (a
	// flag set parses once): Execute runs nothing the analysis would
	// refuse, whoever calls it.
	check, _ := newCommand(genericiooptions.NewTestIOStreamsDiscard(), nil, e.cacheDir, "")
	p, err := parseArgs(check, req.Args)
	if err == nil {
		_, err = e.analyze(p)
	}
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	root, _ := newCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: stdout, ErrOut: stderr}, cfg, e.cacheDir, req.Namespace)
	if p.verb == "rollout status" {
		if sub, _, err := root.Find(req.Args); err == nil {
			boundWait(ctx, sub)
		}
	}
	unregister := informational.register(cfg, stderr)
	defer unregister()
	root.SetArgs(req.Args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

// boundWait gives rollout status, which watches until the rollout ends,
// a --timeout just short of the command's deadline (unless one is given),
// so that it reports where the rollout stands instead of being cut off.
func boundWait(ctx context.Context, sub *cobra.Command) {
	dl, ok := ctx.Deadline()
	f := sub.Flags().Lookup("timeout")
	if !ok || f == nil {
		return
	}
	wait := time.Until(dl) - 2*time.Second
	if wait < time.Second {
		wait = time.Second
	}
	_ = f.Value.Set(wait.Round(time.Second).String())
}

// newCommand builds a fresh kubectl command tree whose every client uses
// cfg, whatever kubeconfig, server or identity flags say, with namespace as
// the default namespace (kubectl's -n overrides it). Trees share nothing
// (tree), so commands build and run in parallel.
func newCommand(streams genericiooptions.IOStreams, cfg *rest.Config, cacheDir, namespace string) (*cobra.Command, *genericclioptions.ConfigFlags) {
	// kubectl's fatal-error handler and its logs helper are package
	// variables: ours are installed once, for every command, and each
	// routes by the command (a panic recovered on the command's own
	// goroutine; the informational lines by the command's config).
	installFatal.Do(func() {
		cmdutil.BehaviorOnFatal(func(msg string, code int) { panic(fatalExit{msg: msg, code: code}) })
		informational.install()
	})
	flags := executor.ConfigFlags(cfg, cacheDir)
	flags.Namespace = &namespace
	root := tree(flags, streams)
	// Each command's warnings go to its own errors (executor.RunInProcess);
	// --warnings-as-errors counts them there.
	root.PersistentPostRunE = func(c *cobra.Command, _ []string) error {
		if f := c.Root().PersistentFlags().Lookup("warnings-as-errors"); f != nil && f.Value.String() == "true" && cfg != nil {
			switch n := executor.WarningCount(cfg); n {
			case 0:
			case 1:
				return fmt.Errorf("%d warning received", n)
			default:
				return fmt.Errorf("%d warnings received", n)
			}
		}
		return nil
	}
	answerCanI(root, flags, streams)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SilenceUsage = true
	root.SilenceErrors = true
	return root, flags
}

// answerCanI replaces how kubectl auth can-i ends: kubectl calls os.Exit(1)
// when the answer is no, which would stop the agent. The same options and
// checks run, and a "no" ends the command with exit code 1 instead.
func answerCanI(root *cobra.Command, flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) {
	canI, _, err := root.Find([]string{"auth", "can-i"})
	if err != nil || canI.Name() != "can-i" {
		return
	}
	f := cmdutil.NewFactory(cmdutil.NewMatchVersionFlags(flags))
	canI.Run = func(c *cobra.Command, args []string) {
		o := &auth.CanIOptions{IOStreams: streams}
		fs := c.Flags()
		o.AllNamespaces, _ = fs.GetBool("all-namespaces")
		o.Quiet, _ = fs.GetBool("quiet")
		o.Subresource, _ = fs.GetString("subresource")
		o.List, _ = fs.GetBool("list")
		o.NoHeaders, _ = fs.GetBool("no-headers")
		cmdutil.CheckErr(o.Complete(f, args))
		cmdutil.CheckErr(o.Validate())
		if o.List {
			cmdutil.CheckErr(o.RunAccessList())
			return
		}
		allowed, err := o.RunAccessCheck()
		cmdutil.CheckErr(err)
		if !allowed {
			panic(fatalExit{code: 1})
		}
	}
}

func firstWord(args []string) string {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return args[0]
}

// verbOf names the command as policy sees it: "get", "rollout restart", "auth can-i".
func verbOf(c *cobra.Command) string {
	var parts []string
	for ; c.HasParent(); c = c.Parent() {
		parts = append([]string{c.Name()}, parts...)
	}
	return strings.Join(parts, " ")
}
