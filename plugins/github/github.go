// Package github is the github executor: "github issue create KIND/NAME
// [-n NS] [--alert TEXT]" opens a GitHub issue about a failing object in
// the configured repository, with what an on-call engineer reads first:
// the alert, kubectl describe of the object and, for a pod, the last log
// lines of its containers (current and previous run). Describe and logs
// are read in-process through the kubectl executor, as the caller's
// Kubernetes identity; the values of every Secret of the object's
// namespace are masked in all of it before anything is sent, and nothing
// is sent when they cannot be read.
//
// An object has at most one open issue: the issue carries a hidden marker
// of the object (cluster, resource, namespace, name), and a repeat (a
// retried command, a second click on "Open issue") returns the issue that
// is open instead of opening another.
package github

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	gh "github.com/kubechat/kubechat/internal/github"
	"github.com/kubechat/kubechat/internal/redact"
	"github.com/kubechat/kubechat/plugins/kubectl"
)

// Settings configure the github executor.
type Settings struct {
	// Repository is where issues are opened, as owner/name.
	Repository string `yaml:"repository"`
	// Labels are set on every issue (GitHub creates a label it does not
	// know); open issues are looked up among those with all of them.
	Labels []string `yaml:"labels"`
	// LogLines is how many of the last log lines of each container of a
	// pod an issue holds (default 150, at most 1000).
	LogLines int `yaml:"logLines" jsonschema:"minimum=0,maximum=1000"`
	// API is the GitHub API and its credentials (a token or a GitHub App
	// installation that may write issues).
	API config.GitHubAPI `yaml:"api"`
}

// DefaultLogLines is Settings.LogLines' default.
const DefaultLogLines = 150

// Caps of what an issue holds, so that it stays under GitHub's body limit
// (65536 characters) whatever the object prints.
const (
	maxDescribeBytes = 24 << 10
	maxLogBytes      = 16 << 10 // each of the current and previous logs
	maxLineBytes     = 500
	maxAlertBytes    = 2 << 10
	// maxRawLogBytes is what is read of the logs before they are tailed.
	maxRawLogBytes = 512 << 10
)

// VerbCreate is the executor's one verb. It writes to GitHub, so a policy
// allows it only where it lists it.
const VerbCreate = "issue create"

// Executor opens GitHub issues about cluster objects.
type Executor struct {
	name    string
	cluster string
	s       Settings
	repo    gh.Repo
	gh      *gh.Client
	kubectl executor.Executor
	base    *rest.Config
	// secrets reads Secret values as the agent, only to mask them.
	secrets kubernetes.Interface
	log     *slog.Logger
	// open serialises looking up and opening issues, so that two clicks at
	// once open one issue.
	open sync.Mutex
}

// New builds the github executor. It validates its settings and contacts
// neither the cluster nor GitHub.
func New(name string, raw config.Raw, d executor.Deps) (executor.Executor, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("github executor %q: %w", name, err)
	}
	var errs []error
	repo, err := gh.ParseRepo(s.Repository)
	if err != nil {
		errs = append(errs, fmt.Errorf("settings.repository: %w", err))
	}
	for i, l := range s.Labels {
		if strings.TrimSpace(l) == "" || strings.Contains(l, ",") {
			errs = append(errs, fmt.Errorf("settings.labels[%d]: %q: a label is a non-empty name without commas", i, l))
		}
	}
	if s.LogLines < 0 || s.LogLines > 1000 {
		errs = append(errs, fmt.Errorf("settings.logLines: %d is not between 0 and 1000", s.LogLines))
	}
	s.API.Check(func(field, problem string) {
		at := "settings.api"
		if field != "" {
			at += "." + field
		}
		errs = append(errs, fmt.Errorf("%s: %s", at, problem))
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("github executor %q: %w", name, err)
	}
	if s.LogLines == 0 {
		s.LogLines = DefaultLogLines
	}
	client, _, err := gh.Connect(s.API, nil)
	if err != nil {
		return nil, fmt.Errorf("github executor %q: settings.api.%w", name, err)
	}
	k, err := kubectl.New(name, config.Raw{}, d)
	if err != nil {
		return nil, fmt.Errorf("github executor %q: %w", name, err)
	}
	e := &Executor{name: name, cluster: d.Cluster, s: s, repo: repo, gh: client, kubectl: k, base: d.RESTConfig, log: d.Log}
	if d.RESTConfig != nil {
		if e.secrets, err = kubernetes.NewForConfig(d.RESTConfig); err != nil {
			return nil, fmt.Errorf("github executor %q: %w", name, err)
		}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.log = e.log.With("executor", name)
	return e, nil
}

// Name is the configured executor name.
func (e *Executor) Name() string { return e.name }

// ReadOnlyVerbs: none; a policy must list "issue create".
func (e *Executor) ReadOnlyVerbs() []string { return []string{} }

// command is one parsed github command.
type command struct {
	target    string // KIND/NAME
	namespace string
	alert     string
}

const usage = `github issue create KIND/NAME [-n NAMESPACE] [--alert TEXT]`

func parse(args []string) (command, error) {
	var c command
	fs := pflag.NewFlagSet("github", pflag.ContinueOnError)
	fs.SetOutput(discard{})
	fs.StringVarP(&c.namespace, "namespace", "n", "", "")
	fs.StringVar(&c.alert, "alert", "", "")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("%w; usage: %s", err, usage)
	}
	words := fs.Args()
	if len(words) < 2 || words[0] != "issue" || words[1] != "create" {
		return c, fmt.Errorf("kubechat's github command is %q; usage: %s", "issue create", usage)
	}
	if len(words) != 3 {
		return c, fmt.Errorf("github issue create: give exactly one KIND/NAME; usage: %s", usage)
	}
	kind, name, ok := strings.Cut(words[2], "/")
	if !ok || kind == "" || name == "" || strings.HasPrefix(kind, "-") {
		return c, fmt.Errorf("%q is not KIND/NAME (such as pod/web-1); usage: %s", words[2], usage)
	}
	c.target = words[2]
	if len(c.alert) > maxAlertBytes {
		return c, fmt.Errorf("--alert: %d bytes; at most %d", len(c.alert), maxAlertBytes)
	}
	return c, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// describeArgs is the kubectl command that describes c's object.
func describeArgs(c command, namespace string) []string {
	args := []string{"describe", c.target}
	if namespace != "" {
		args = append(args, "-n", namespace)
	}
	return args
}

// isPod reports whether a describe's analysis is of a pod.
func isPod(a executor.Analysis) bool {
	return len(a.Resources) == 1 && a.Resources[0].Group == "" && a.Resources[0].Resource == "pods"
}

// Analyze says what args would do, for policy: the verb "issue create",
// the object's resource as kubectl describe reads it (discovery resolves
// the kind), and pods/log for a pod. It runs nothing.
func (e *Executor) Analyze(ctx context.Context, args []string) (executor.Analysis, error) {
	c, err := parse(args)
	if err != nil {
		return executor.Analysis{}, err
	}
	a, err := e.kubectl.Analyze(ctx, describeArgs(c, c.namespace))
	if err != nil {
		return executor.Analysis{}, err
	}
	if isPod(a) {
		a.Resources = append(a.Resources, executor.Resource{Resource: "pods", Subresource: "log", Namespaced: true})
	}
	a.Verb = VerbCreate
	return a, nil
}

// Execute opens the issue about the object, or finds the one open, as
// req.Identity: describe and logs are read as that identity, so
// Kubernetes RBAC decides what the issue may show.
func (e *Executor) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	c, err := parse(req.Args)
	if err != nil {
		return executor.Result{}, err
	}
	ns := c.namespace
	if ns == "" {
		ns = req.Namespace
	}
	if ns == "" {
		ns = "default"
	}
	if err := executor.CheckIdentity("github", e.base, req.Identity); err != nil {
		return executor.Result{}, err
	}
	// The Secrets first: without their values nothing can be masked, and
	// nothing is read or sent.
	secrets := redact.NewSet()
	if err := executor.RecordSecrets(ctx, e.secrets, ns, secrets); err != nil {
		return executor.Result{}, fmt.Errorf("no issue opened: %w", err)
	}
	a, err := e.kubectl.Analyze(ctx, describeArgs(c, ns))
	if err != nil {
		return executor.Result{}, err
	}
	run := func(args []string, limit int) (executor.Result, error) {
		return e.kubectl.Execute(ctx, executor.Request{Args: args, Namespace: ns, Identity: req.Identity, MaxOutputBytes: limit, Caller: req.Caller})
	}
	desc, err := run(describeArgs(c, ns), maxDescribeBytes)
	if err != nil {
		return executor.Result{}, err
	}
	if desc.ExitCode != 0 {
		// Not found, or RBAC refused: nothing is opened, and the reply
		// says why as kubectl did.
		desc.Output, desc.Errors = "", secrets.RedactCut("no issue opened: "+desc.Errors)
		return desc, nil
	}
	is := issue{cluster: e.cluster, target: c.target, namespace: ns, alert: c.alert, caller: req.Caller,
		describe: secrets.RedactCut(desc.Output), describeCut: desc.Truncated, lines: e.s.LogLines}
	if isPod(a) {
		for _, previous := range []bool{false, true} {
			args := []string{"logs", c.target, "-n", ns, "--all-containers", "--prefix", "--tail", fmt.Sprint(e.s.LogLines)}
			if previous {
				args = append(args, "--previous")
			}
			res, err := run(args, maxRawLogBytes)
			if err != nil {
				return executor.Result{}, err
			}
			l := logs{previous: previous}
			if res.ExitCode != 0 {
				l.err = secrets.RedactCut(strings.TrimSpace(res.Errors))
			} else {
				l.text, l.cut = tail(secrets.RedactCut(res.Output), e.s.LogLines)
				l.cut = l.cut || res.Truncated
			}
			is.logs = append(is.logs, l)
		}
	}
	marker := "kubechat-issue " + key(e.cluster, a, ns, c.target)
	title, body := is.render()
	title, body = secrets.Redact(title), secrets.Redact(body)
	e.open.Lock()
	got, created, err := e.gh.OpenIssue(ctx, e.repo, marker, title, body, e.s.Labels)
	e.open.Unlock()
	if err != nil {
		return executor.Result{}, err
	}
	out := fmt.Sprintf("Opened issue #%d in %s: %s\n", got.Number, e.repo, got.HTMLURL)
	if !created {
		out = fmt.Sprintf("An issue about %s in namespace %s is already open: #%d in %s: %s\n", c.target, ns, got.Number, e.repo, got.HTMLURL)
	}
	e.log.Info("github issue", "repository", e.repo.String(), "number", got.Number, "created", created)
	return executor.Result{Output: out, Buttons: []executor.Button{{Label: "View issue", URL: got.HTMLURL}}}, nil
}

// key names the object across clicks, retries and channels: the cluster,
// the resource as discovery resolved it (pod, po and pods are one), the
// namespace and the name.
func key(cluster string, a executor.Analysis, namespace, target string) string {
	res := ""
	if len(a.Resources) > 0 {
		res = a.Resources[0].Group + "/" + a.Resources[0].Resource
	}
	_, name, _ := strings.Cut(target, "/")
	h := sha256.Sum256([]byte(cluster + "\x00" + res + "\x00" + namespace + "\x00" + name))
	return hex.EncodeToString(h[:12])
}

// tail keeps the last n lines of each container in kubectl's --prefix
// output (in order), each line cut to maxLineBytes, and at most
// maxLogBytes of them from the end; cut says whether anything was left out.
func tail(out string, n int) (text string, cut bool) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return "", false
	}
	count := map[string]int{}
	keep := make([]bool, len(lines))
	for i := len(lines) - 1; i >= 0; i-- {
		prefix, _, _ := strings.Cut(lines[i], "] ")
		if count[prefix] < n {
			count[prefix]++
			keep[i] = true
		} else {
			cut = true
		}
	}
	var kept []string
	size := 0
	for i := len(lines) - 1; i >= 0; i-- {
		if !keep[i] {
			continue
		}
		l := lines[i]
		if len(l) > maxLineBytes {
			l = cutString(l, maxLineBytes) + " …(line cut)"
		}
		if size+len(l)+1 > maxLogBytes {
			cut = true
			break
		}
		size += len(l) + 1
		kept = append(kept, l)
	}
	slices.Reverse(kept)
	return strings.Join(kept, "\n"), cut
}

// cutString is s cut to at most n bytes at a character boundary.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
