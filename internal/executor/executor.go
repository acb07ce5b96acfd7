// Package executor defines how commands run. The command handler parses a command,
// checks the channel's Policy, and calls Execute with the caller's identity;
// executors never check policy themselves.
//
// Who sets timeouts: the command handler sets the per-command deadline on ctx, and
// Execute must return when ctx ends. Request and Result are plain data, so
// executors could later run out of process without changing implementations.
package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"k8s.io/client-go/rest"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/redact"
)

// Executor runs one command for the command handler.
type Executor interface {
	// Name is the configured executor name, such as "kubectl".
	Name() string
	// Analyze says what args would do, for policy, and runs nothing. An
	// error refuses the command: an executor that cannot describe a
	// command to the policy cannot run it. It may read API discovery (the
	// resource names a cluster serves), never objects.
	Analyze(ctx context.Context, args []string) (Analysis, error)
	// Execute runs the command as req.Identity. The command handler calls it only
	// after Analyze and the policy allowed the same args.
	Execute(ctx context.Context, req Request) (Result, error)
}

// Request is one parsed command; Args is argv after the executor name, never a shell string.
type Request struct {
	Args []string
	// Namespace is the policy's default namespace, used when Args name none.
	Namespace string
	Caller    Caller
	// Identity is who the executor acts as in Kubernetes (impersonation).
	// Executors refuse to run without one: the agent's own identity is never used.
	Identity Identity
	// MaxOutputBytes caps the output; past it, Result.Truncated is set.
	MaxOutputBytes int
}

// Identity is a Kubernetes user and groups to impersonate.
type Identity struct {
	User   string
	Groups []string
	// Own means: act as the connection's own identity, impersonating no
	// one. Only "kubechat exec" sets it, inside a command pod, whose
	// connection is the pod's own ServiceAccount; the command handler never does.
	Own bool
}

// ServiceAccount returns the namespace and name of a ServiceAccount
// identity ("system:serviceaccount:ns:name"); ok is false for other users.
func (i Identity) ServiceAccount() (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(i.User, "system:serviceaccount:")
	if !found {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	return namespace, name, ok && namespace != "" && name != ""
}

// String renders "user (groups: a, b)".
func (i Identity) String() string {
	if len(i.Groups) == 0 {
		return i.User
	}
	return i.User + " (groups: " + strings.Join(i.Groups, ", ") + ")"
}

// Analysis is what a command would do, as far as policy cares.
type Analysis struct {
	// Verb names the command as policies list it: "get", "rollout restart".
	Verb string
	// Resources are every API resource the command reads or changes, as
	// discovery resolved them. None means it touches no objects (version,
	// api-resources, auth whoami); executors whose commands reach objects
	// they cannot list implement OpaqueResources.
	Resources []Resource
	// Namespaces are the namespaces the command names (-n, or one fixed by
	// the command); none means the policy's default namespace.
	Namespaces []string
	// AllNamespaces is set for -A and for paths across namespaces.
	AllNamespaces bool
	// Raw is set for a request to a raw API path (kubectl --raw), which a
	// policy must allow (policy.raw).
	Raw bool
	// Streaming is set for commands that never end on their own (logs -f, --watch).
	Streaming bool
	// Confirm is set for commands that change something and must be
	// confirmed with a button before they run (helm rollback, uninstall).
	Confirm bool
	// LinksThread is set for commands that link back to the chat thread
	// they run in (a pull request's commit status): the command handler
	// gives them Caller.ThreadURL.
	LinksThread bool
}

// Resource is one API resource, by group and plural name, as discovery
// serves it. String is how policies write it: "pods" for the core group,
// "deployments.apps" otherwise, with "/log" for a subresource.
type Resource struct {
	Group       string
	Resource    string
	Subresource string
	// Namespaced is false for cluster-scoped resources (nodes, namespaces).
	Namespaced bool
}

// String renders r as policy.resources lists it.
func (r Resource) String() string {
	s := r.Resource
	if r.Group != "" {
		s += "." + r.Group
	}
	if r.Subresource != "" {
		s += "/" + r.Subresource
	}
	return s
}

// OpaqueResources is implemented by executors whose commands reach objects
// that Analyze cannot list (the objects of a Helm chart, whatever a pod
// template's image does). Why says so; the command handler refuses to bind such an
// executor under a policy that lists resources.
type OpaqueResources interface {
	OpaqueResources() (why string)
}

// ClusterFree is implemented by executors whose commands never reach the
// cluster: they act on the agent itself (silences, explain). When
// ClusterFree reports true, their commands run, still under the channel's
// policy, where neither the channel nor the user has a Kubernetes
// identity; Execute then gets a zero Identity. Every other executor runs
// only with an identity.
type ClusterFree interface {
	ClusterFree() bool
}

// NeedsIdentity reports whether e's commands need a Kubernetes identity:
// all but those of a ClusterFree executor that says so.
func NeedsIdentity(e Executor) bool {
	cf, ok := e.(ClusterFree)
	return !ok || !cf.ClusterFree()
}

// ReadOnly is implemented by executors whose read-only verbs are not
// kubectl's: a policy that lists no verbs allows these.
type ReadOnly interface {
	ReadOnlyVerbs() []string
}

// Caller is who asked, for policy, impersonation and audit.
type Caller struct {
	Platform string
	Channel  string
	UserID   string
	UserName string
	// ChannelID and Thread say where the reply goes (the platform's
	// channel id; the message replied to, its channel and its thread's
	// root), so that a command pod's result can be posted by a later
	// agent (podrun adoption).
	ChannelID                           string
	ThreadChannel, ThreadID, ThreadRoot string
	// ThreadURL is the address of that thread (its root message), for a
	// command whose Analysis.LinksThread asked for it, where the platform
	// has one (chat.Permalinker); "" otherwise.
	ThreadURL string
}

// Result is what the command handler renders back into the channel.
type Result struct {
	// Output is the command's standard output.
	Output string
	// Errors is its standard error.
	Errors string
	// ExitCode is 0 on success.
	ExitCode  int
	Truncated bool
	// Forbidden is set when Kubernetes RBAC refused a request of the command.
	Forbidden bool
	// Buttons are follow-ups the command handler offers under the result.
	Buttons []Button
	// Ongoing is set when the command started an operation that goes on
	// after Execute returned (an Argo CD sync): the command handler then
	// reports it through the executor's Watcher until it ends.
	Ongoing bool
}

// Watcher is implemented by executors whose commands start operations
// that go on after Execute returns (Result.Ongoing).
type Watcher interface {
	// Watch blocks until the operation that req started has changed since
	// last (the previous result), then returns the result as it stands
	// now; done is set once the operation ended, and the result is then
	// its outcome. It reads as req.Identity, and returns when ctx ends.
	Watch(ctx context.Context, req Request, last Result) (res Result, done bool, err error)
}

// Button is a follow-up under a result. A button with Args runs
// "<executor> Args..." as a new command when clicked: the command handler keeps the
// command server side behind a signed one-shot id, and checks policy and
// identity again for whoever clicks, as if they had typed it. A button with
// a URL opens the link instead. A button with neither (a link whose URL is
// unknown) is not shown.
type Button struct {
	Label string
	Args  []string
	URL   string
	// Primary marks the suggested next step.
	Primary bool
}

// Settle ends an in-process executor's run of one command, in a deferred
// call: p, the value recover returned, becomes the command's error (a
// panic in a large library costs one command, not the agent); the Secret
// values seen are masked in the output, the errors and the returned error;
// and the output is capped after masking. what names the command in the
// panic's error ("flux diff").
func Settle(p any, what string, secrets *redact.Set, maxOutputBytes int, res *Result, err *error) {
	if p != nil {
		*res, *err = Result{}, fmt.Errorf("%s failed: %v", what, p)
	}
	res.Output, res.Errors = secrets.Redact(res.Output), secrets.Redact(res.Errors)
	*res = res.Capped(maxOutputBytes)
	if *err != nil {
		*err = &maskedError{msg: secrets.Redact((*err).Error()), err: *err}
	}
}

// maskedError is err with Secret values masked in its text; errors.Is and
// errors.As still see err.
type maskedError struct {
	msg string
	err error
}

func (m *maskedError) Error() string { return m.msg }
func (m *maskedError) Unwrap() error { return m.err }

// Capped returns r with Output and Errors each cut to limit bytes
// (config.DefaultMaxOutputBytes when limit is 0 or less), at a character
// boundary, and Truncated set when it cut. Cap after masking Secret
// values, so that a cut never leaves part of one unmasked.
func (r Result) Capped(limit int) Result {
	if limit <= 0 {
		limit = config.DefaultMaxOutputBytes
	}
	cut := func(s string) string {
		if len(s) <= limit {
			return s
		}
		r.Truncated = true
		s = s[:limit]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		return s
	}
	r.Output, r.Errors = cut(r.Output), cut(r.Errors)
	return r
}

// Deps are what the app hands every executor factory.
type Deps struct {
	Log *slog.Logger
	// RESTConfig is the agent's own config; executors must impersonate
	// before they use it and never hand it on as is.
	RESTConfig *rest.Config
	Cluster    string
}

// Factory builds an executor from its config entry.
type Factory func(name string, settings config.Raw, d Deps) (Executor, error)

// Sentinel errors, checked with errors.Is.
var (
	// ErrDenied means policy or RBAC refused the command.
	ErrDenied = errors.New("denied")
	// ErrUnknown means no executor or built-in has that name.
	ErrUnknown = errors.New("unknown command")
)

// Builder is implemented by executors that offer a step-by-step command
// builder (chat selects) for read-only commands.
type Builder interface {
	// Complete lists the values that may fill field ("resource", "namespace"
	// or "name") given the fields chosen so far, as id is allowed to see them.
	Complete(ctx context.Context, id Identity, field string, chosen map[string]string) ([]string, error)
}
