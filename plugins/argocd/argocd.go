// Package argocd is the Argo CD executor. It reads and operates Argo CD
// Applications through the Kubernetes API only, as the caller's
// impersonated identity, so that Kubernetes RBAC decides what each caller
// may see and do: no Argo CD API server, CLI or account is involved.
//
// Reading: app list, get, history, resources and diff; app diff
// --github-ref renders the Application's source at a pull request's head
// and dry-runs it against the cluster (package prdiff, as flux diff does),
// with buttons to post the diff (app comment) and approve (app approve).
// What a github source's events run: app report (the diff at a pushed
// commit, posted to the pull request with the commit status
// kubechat/diff) and app follow (the Application followed until it is
// synced and healthy at a merge commit, or failed there).
// Writing, each with
// Confirm: app sync and app rollback set the Application's operation as
// Argo CD's API server does (server/application Sync and Rollback), and
// app refresh sets the refresh annotation; the reply then reports the
// operation as the application controller records it, until it ends.
package argocd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/kubechat/kubechat/internal/argocd"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/prdiff"
	"github.com/kubechat/kubechat/internal/redact"
)

// Settings configure the Argo CD executor.
type Settings struct {
	// URL is the Argo CD web UI (https://argocd.example.com); when set,
	// replies link to the Application there.
	URL string `yaml:"url"`
	// Namespace is where Applications live when a command names none and
	// the policy has no default namespace (default: argocd). It is taken
	// to be Argo CD's own namespace, as resource tracking names
	// Applications.
	Namespace string `yaml:"namespace"`
	// Diff is how "app diff --github-ref" reads, comments on and approves
	// pull requests, and the limits of its checkout and build, as for the
	// flux executor.
	Diff prdiff.Settings `yaml:"diff"`
}

// DefaultNamespace is where Argo CD keeps its Applications by default.
const DefaultNamespace = "argocd"

// Executor runs argocd commands.
type Executor struct {
	name    string
	cluster string
	base    *rest.Config
	s       Settings
	prs     *prdiff.Differ
	log     *slog.Logger
	follows executor.Follows
}

// New builds the Argo CD executor. It validates its settings and does not
// contact the cluster.
func New(name string, raw config.Raw, d executor.Deps) (executor.Executor, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("argocd executor %q: %w", name, err)
	}
	if s.URL != "" {
		if err := config.CheckHTTPURL("settings.url", s.URL); err != nil {
			return nil, fmt.Errorf("argocd executor %q: %w", name, err)
		}
	}
	if s.Namespace == "" {
		s.Namespace = DefaultNamespace
	}
	prs, err := prdiff.New("argocd", "settings.diff", s.Diff)
	if err != nil {
		return nil, fmt.Errorf("argocd executor %q: %w", name, err)
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Executor{name: name, cluster: d.Cluster, base: d.RESTConfig, s: s, prs: prs, log: log.With("executor", name)}, nil
}

// Name is the configured executor name.
func (e *Executor) Name() string { return e.name }

// Verbs, as policies list them.
const (
	verbList      = "app list"
	verbGet       = "app get"
	verbHistory   = "app history"
	verbResources = "app resources"
	verbDiff      = "app diff"
	verbSync      = "app sync"
	verbRefresh   = "app refresh"
	verbRollback  = "app rollback"
	verbComment   = "app comment"
	verbApprove   = "app approve"
	verbReport    = "app report"
	verbFollow    = "app follow"
)

// ReadOnlyVerbs change nothing; a policy that lists no verbs allows them.
// comment, approve and report write to GitHub, so a policy must list them.
func (e *Executor) ReadOnlyVerbs() []string {
	return []string{verbList, verbGet, verbHistory, verbResources, verbDiff, verbFollow}
}

// command is one parsed argocd command.
type command struct {
	verb          string
	name          string
	namespace     string
	allNamespaces bool
	selector      string
	project       string
	prune         bool
	dryRun        bool
	revision      string
	hard          bool
	id            int64
	ref           string
	sha           string
}

const usage = `argocd app list [-n NS | -A] [-l SELECTOR] [--project P]
argocd app get NAME [-n NS]
argocd app history NAME [-n NS]
argocd app resources NAME [-n NS]
argocd app diff NAME [-n NS] [--github-ref PR|URL|BRANCH]
argocd app comment NAME [-n NS] --github-ref PR --sha SHA
argocd app approve NAME [-n NS] --github-ref PR --sha SHA
argocd app report NAME [-n NS] --github-ref PR --sha SHA
argocd app follow NAME [-n NS] --sha SHA
argocd app sync NAME [-n NS] [--prune] [--dry-run] [--revision R]
argocd app refresh NAME [-n NS] [--hard]
argocd app rollback NAME ID [-n NS] [--prune] [--dry-run]`

// parse reads args into a command, naming any bad word or flag.
func parse(args []string) (command, error) {
	var c command
	fs := pflag.NewFlagSet("argocd", pflag.ContinueOnError)
	fs.SetOutput(discard{})
	fs.StringVarP(&c.namespace, "namespace", "n", "", "")
	fs.BoolVarP(&c.allNamespaces, "all-namespaces", "A", false, "")
	fs.StringVarP(&c.selector, "selector", "l", "", "")
	fs.StringVarP(&c.project, "project", "p", "", "")
	fs.BoolVar(&c.prune, "prune", false, "")
	fs.BoolVar(&c.dryRun, "dry-run", false, "")
	fs.StringVar(&c.revision, "revision", "", "")
	fs.BoolVar(&c.hard, "hard", false, "")
	fs.StringVar(&c.ref, "github-ref", "", "")
	fs.StringVar(&c.sha, "sha", "", "")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("%w; usage:\n%s", err, usage)
	}
	bad := func(format string, a ...any) (command, error) {
		return c, fmt.Errorf(format+"; usage:\n%s", append(a, usage)...)
	}
	words := fs.Args()
	if len(words) == 0 || (words[0] != "app" && words[0] != "apps") {
		if len(words) == 0 {
			return bad("no argocd command given")
		}
		return bad("%q is not an argocd command kubechat runs (it runs app ...)", words[0])
	}
	if len(words) < 2 {
		return bad("argocd app: say what to do")
	}
	c.verb = "app " + words[1]
	rest := words[2:]
	only := func(flags ...string) error {
		allowed := map[string]bool{"namespace": true}
		for _, f := range flags {
			allowed[f] = true
		}
		var err error
		fs.Visit(func(f *pflag.Flag) {
			if !allowed[f.Name] && err == nil {
				err = fmt.Errorf("argocd %s does not take --%s", c.verb, f.Name)
			}
		})
		return err
	}
	var err error
	switch c.verb {
	case verbList:
		if len(rest) != 0 {
			return bad("argocd app list takes no names (%q)", strings.Join(rest, " "))
		}
		err = only("all-namespaces", "selector", "project")
	case verbGet, verbHistory, verbResources, verbDiff, verbSync, verbRefresh, verbComment, verbApprove, verbReport, verbFollow:
		if len(rest) != 1 {
			return bad("argocd %s: give exactly one application NAME", c.verb)
		}
		c.name = rest[0]
		switch c.verb {
		case verbSync:
			err = only("prune", "dry-run", "revision")
		case verbRefresh:
			err = only("hard")
		case verbDiff:
			err = only("github-ref", "sha")
			if c.sha != "" && c.ref == "" {
				return bad("argocd app diff: --sha needs --github-ref")
			}
		case verbFollow:
			err = only("sha")
			if err == nil && c.sha == "" {
				return bad("argocd app follow: --sha is required (the commit the Application is to sync)")
			}
		case verbComment, verbApprove, verbReport:
			err = only("github-ref", "sha")
			if err == nil && (c.ref == "" || c.sha == "") {
				return bad("argocd %s: --github-ref and --sha are required (the pull request and the commit that was diffed)", c.verb)
			}
		default:
			err = only()
		}
	case verbRollback:
		if len(rest) != 2 {
			return bad("argocd app rollback: give the application NAME and a history ID (see app history)")
		}
		c.name = rest[0]
		if c.id, err = strconv.ParseInt(rest[1], 10, 64); err != nil || c.id < 0 {
			return bad("argocd app rollback: history ID %q is not a number (see app history)", rest[1])
		}
		err = only("prune", "dry-run")
	default:
		return bad("%q is not an argocd app command kubechat runs", words[1])
	}
	if err != nil {
		return bad("%s", err.Error())
	}
	if c.sha != "" && !prdiff.IsSHA(c.sha) {
		return bad("--sha %q: not a full commit id (40 hex digits)", c.sha)
	}
	if c.allNamespaces && c.namespace != "" {
		return bad("give -n or -A, not both")
	}
	return c, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// writes are the verbs that change an Application.
func writes(verb string) bool {
	return verb == verbSync || verb == verbRefresh || verb == verbRollback
}

// Analyze says what args would do, for policy. It runs nothing. Every
// write asks for confirmation.
func (e *Executor) Analyze(_ context.Context, args []string) (executor.Analysis, error) {
	c, err := parse(args)
	if err != nil {
		return executor.Analysis{}, err
	}
	a := executor.Analysis{
		Verb:          c.verb,
		Resources:     []executor.Resource{{Group: argocd.Group, Resource: "applications", Namespaced: true}},
		AllNamespaces: c.allNamespaces,
		Confirm:       writes(c.verb),
		// A report's commit status links to the chat thread it runs in.
		LinksThread: c.verb == verbReport,
	}
	if c.namespace != "" {
		a.Namespaces = []string{c.namespace}
	}
	return a, nil
}

// run is one command's state.
type run struct {
	e       *Executor
	cfg     *rest.Config
	apps    dynamic.NamespaceableResourceInterface
	secrets *redact.Set
	req     executor.Request
	cmd     command
}

// prepare checks the identity and builds the command's client, which acts
// as req.Identity.
func (e *Executor) prepare(ctx context.Context, req executor.Request) (*run, error) {
	if err := executor.CheckIdentity("argocd", e.base, req.Identity); err != nil {
		return nil, err
	}
	c, err := parse(req.Args)
	if err != nil {
		return nil, err
	}
	if c.namespace == "" && !c.allNamespaces {
		c.namespace = req.Namespace
		if c.namespace == "" {
			c.namespace = e.s.Namespace
		}
	}
	secrets := redact.NewSet()
	cfg := executor.Impersonating(e.base, req.Identity, secrets)
	if dl, ok := ctx.Deadline(); ok {
		cfg.Timeout = time.Until(dl)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the cluster: %w", err)
	}
	return &run{e: e, cfg: cfg, apps: dyn.Resource(argocd.Applications), secrets: secrets, req: req, cmd: c}, nil
}

// Execute runs one argocd command as req.Identity.
func (e *Executor) Execute(ctx context.Context, req executor.Request) (res executor.Result, err error) {
	r, err := e.prepare(ctx, req)
	if err != nil {
		return executor.Result{}, err
	}
	defer r.finish(&res, &err)
	switch r.cmd.verb {
	case verbList:
		return r.list(ctx)
	case verbGet:
		return r.get(ctx)
	case verbHistory:
		return r.history(ctx)
	case verbResources:
		return r.resources(ctx)
	case verbDiff:
		return r.diff(ctx)
	case verbComment:
		return r.comment(ctx)
	case verbApprove:
		return r.approve(ctx)
	case verbReport:
		return r.report(ctx)
	case verbFollow:
		return r.follow(ctx)
	case verbSync:
		return r.sync(ctx)
	case verbRefresh:
		return r.refresh(ctx)
	default:
		return r.rollback(ctx)
	}
}

// finish turns an RBAC refusal into a Forbidden result and a refusal into
// a failed command, then settles the result (executor.Settle: a panic
// becomes the error, Secret values are masked, the output capped).
func (r *run) finish(res *executor.Result, err *error) {
	p := recover()
	if p == nil && apierrors.IsForbidden(*err) {
		*res, *err = executor.Result{Errors: (*err).Error() + "\n", ExitCode: 1, Forbidden: true}, nil
	}
	var refused *refusal
	if p == nil && errors.As(*err, &refused) {
		*res, *err = executor.Result{Errors: "Error: " + refused.Error() + "\n", ExitCode: 1}, nil
	}
	executor.Settle(p, "argocd "+r.cmd.verb, r.secrets, r.req.MaxOutputBytes, res, err)
}

// refusal is an error the user caused (no such history ID, an operation
// already running): a failed command, not a broken executor.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func refuse(format string, a ...any) error { return &refusal{msg: fmt.Sprintf(format, a...)} }

// qualified is "namespace/name", as Argo CD names an Application.
func qualified(namespace, name string) string { return namespace + "/" + name }
