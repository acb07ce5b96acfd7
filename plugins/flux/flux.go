// Package flux is the Flux executor. It diffs a Flux Kustomization against a
// GitHub pull request as kustomize-controller would apply it: the pull
// request's head is cloned (go-git), built with Flux's own kustomize build
// (remote bases, plugins and exec off, nothing outside the checkout),
// post-build substitutions applied, and each object dry-run applied on the
// server (Flux's ssa) as the caller's Kubernetes identity. The reply lists
// created, configured, deleted and unchanged objects with a unified diff per
// change, and offers buttons to post the diff to the pull request and to
// approve it at the diffed commit. It also lists Kustomizations and Git
// sources as the flux CLI does.
//
// Secret values are masked everywhere: those read from the cluster, those
// in the build, and those substituted from Secrets (postBuild.substituteFrom).
package flux

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/prdiff"
	"github.com/kubechat/kubechat/internal/redact"
)

// Settings configure the Flux executor: GitHub, and the limits of a
// checkout and its build.
type Settings = prdiff.Settings

// Executor runs flux commands.
type Executor struct {
	name    string
	cluster string
	base    *rest.Config
	prs     *prdiff.Differ
	log     *slog.Logger
	follows executor.Follows
}

// New builds the Flux executor. It validates its settings and contacts
// neither the cluster nor GitHub.
func New(name string, raw config.Raw, d executor.Deps) (executor.Executor, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("flux executor %q: %w", name, err)
	}
	prs, err := prdiff.New("flux", "settings", s)
	if err != nil {
		return nil, fmt.Errorf("flux executor %q: %w", name, err)
	}
	e := &Executor{name: name, cluster: d.Cluster, base: d.RESTConfig, prs: prs, log: d.Log}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.log = e.log.With("executor", name)
	return e, nil
}

// Name is the configured executor name.
func (e *Executor) Name() string { return e.name }

// Verbs. Reading verbs are allowed by a policy that lists none; comment,
// approve and report act on GitHub, so a policy must list them.
const (
	verbDiff       = "diff"
	verbGetKs      = "get kustomizations"
	verbGetSources = "get sources git"
	verbComment    = "comment"
	verbApprove    = "approve"
	verbReport     = "report"
	verbFollow     = "follow"
)

// ReadOnlyVerbs are diff, follow and get: they change nothing.
func (e *Executor) ReadOnlyVerbs() []string {
	return []string{verbDiff, verbFollow, verbGetKs, verbGetSources}
}

// command is one parsed flux command.
type command struct {
	verb          string
	name          string
	namespace     string
	allNamespaces bool
	path          string
	ref           string
	sha           string
}

// usage lists the commands, for errors.
const usage = `flux diff kustomization NAME [-n NS] [--path ./dir] --github-ref PR|URL|BRANCH
flux comment kustomization NAME [-n NS] --github-ref PR --sha SHA
flux approve kustomization NAME [-n NS] --github-ref PR --sha SHA
flux report kustomization NAME [-n NS] --github-ref PR --sha SHA
flux follow kustomization NAME [-n NS] --sha SHA
flux get kustomizations [-n NS | -A]
flux get sources git [-n NS | -A]`

// parse reads args into a command, naming any bad word or flag.
func parse(args []string) (command, error) {
	var c command
	fs := pflag.NewFlagSet("flux", pflag.ContinueOnError)
	fs.SetOutput(discard{})
	fs.StringVarP(&c.namespace, "namespace", "n", "", "")
	fs.BoolVarP(&c.allNamespaces, "all-namespaces", "A", false, "")
	fs.StringVar(&c.path, "path", "", "")
	fs.StringVar(&c.ref, "github-ref", "", "")
	fs.StringVar(&c.sha, "sha", "", "")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("%w; usage:\n%s", err, usage)
	}
	words := fs.Args()
	bad := func(format string, a ...any) (command, error) {
		return c, fmt.Errorf(format+"; usage:\n%s", append(a, usage)...)
	}
	if len(words) == 0 {
		return bad("no flux command given")
	}
	switch words[0] {
	case "get":
		switch {
		case len(words) == 2 && (words[1] == "kustomizations" || words[1] == "kustomization" || words[1] == "ks"):
			c.verb = verbGetKs
		case len(words) == 3 && (words[1] == "sources" || words[1] == "source") && words[2] == "git":
			c.verb = verbGetSources
		default:
			return bad("flux get %q: kubechat lists kustomizations and sources git", strings.Join(words[1:], " "))
		}
		if c.path != "" || c.ref != "" || c.sha != "" {
			return bad("flux get takes only -n and -A")
		}
		return c, nil
	case verbDiff, verbComment, verbApprove, verbReport, verbFollow:
		c.verb = words[0]
	default:
		return bad("%q is not a flux command kubechat runs", words[0])
	}
	if len(words) < 2 || (words[1] != "kustomization" && words[1] != "ks") {
		return bad("flux %s: only \"kustomization NAME\" can be diffed", c.verb)
	}
	if len(words) != 3 {
		return bad("flux %s kustomization: give exactly one NAME", c.verb)
	}
	c.name = words[2]
	if c.allNamespaces {
		return bad("flux %s: -A is for get; give -n NAMESPACE", c.verb)
	}
	if c.verb == verbFollow {
		if c.ref != "" || c.path != "" {
			return bad("flux follow takes -n and --sha only")
		}
	} else if c.ref == "" {
		return bad("flux %s: --github-ref is required (a pull request number, URL or branch)", c.verb)
	}
	if c.verb != verbDiff && c.sha == "" {
		return bad("flux %s: --sha is required (the commit that was diffed)", c.verb)
	}
	if c.sha != "" && !prdiff.IsSHA(c.sha) {
		return bad("--sha %q: not a full commit id (40 hex digits)", c.sha)
	}
	return c, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Analyze says what args would do, for policy. It runs nothing.
func (e *Executor) Analyze(_ context.Context, args []string) (executor.Analysis, error) {
	c, err := parse(args)
	if err != nil {
		return executor.Analysis{}, err
	}
	res := executor.Resource{Group: "kustomize.toolkit.fluxcd.io", Resource: "kustomizations", Namespaced: true}
	if c.verb == verbGetSources {
		res = executor.Resource{Group: "source.toolkit.fluxcd.io", Resource: "gitrepositories", Namespaced: true}
	}
	// A report's commit status links to the chat thread it runs in.
	a := executor.Analysis{Verb: c.verb, Resources: []executor.Resource{res}, AllNamespaces: c.allNamespaces, LinksThread: c.verb == verbReport}
	if c.namespace != "" {
		a.Namespaces = []string{c.namespace}
	}
	return a, nil
}

// Execute runs one flux command as req.Identity. Everything it reads from
// the cluster is read as that identity, and its output has every Secret
// value it saw masked.
func (e *Executor) Execute(ctx context.Context, req executor.Request) (res executor.Result, err error) {
	r, err := e.prepare(req)
	if err != nil {
		return executor.Result{}, err
	}
	if dl, ok := ctx.Deadline(); ok {
		r.cfg.Timeout = time.Until(dl)
	}
	defer func() { executor.Settle(recover(), "flux "+r.cmd.verb, r.secrets, req.MaxOutputBytes, &res, &err) }()
	switch r.cmd.verb {
	case verbGetKs:
		return r.getKustomizations(ctx)
	case verbGetSources:
		return r.getSources(ctx)
	case verbDiff:
		return r.diff(ctx)
	case verbReport:
		return r.report(ctx)
	case verbFollow:
		return r.follow(ctx)
	case verbComment:
		return r.comment(ctx)
	default:
		return r.approve(ctx)
	}
}

// prepare parses req and connects as req.Identity.
func (e *Executor) prepare(req executor.Request) (*run, error) {
	if err := executor.CheckIdentity("flux", e.base, req.Identity); err != nil {
		return nil, err
	}
	c, err := parse(req.Args)
	if err != nil {
		return nil, err
	}
	if c.namespace == "" {
		c.namespace = req.Namespace
	}
	if c.namespace == "" {
		c.namespace = "flux-system"
	}
	secrets := redact.NewSet()
	cfg := executor.Impersonating(e.base, req.Identity, secrets)
	return &run{e: e, cfg: cfg, secrets: secrets, req: req, cmd: c}, nil
}

// run is one command's state.
type run struct {
	e       *Executor
	cfg     *rest.Config
	secrets *redact.Set
	req     executor.Request
	cmd     command
}
