package executor

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kubechat/kubechat/internal/config"
)

// ReadOnlyVerbs are the verbs a policy allows when it lists none, unless
// its executor names its own (ReadOnly).
var ReadOnlyVerbs = []string{
	"get", "describe", "logs", "explain", "api-resources", "api-versions", "version", "top node", "top pod",
	"events", "cluster-info", "auth can-i", "auth whoami", "rollout status", "rollout history",
}

// Policy is what one executor entry allows, checked by the command handler before Execute.
type Policy struct {
	Executor string
	Verbs    []string
	// DefaultVerbs are allowed when Verbs is empty: the executor's read-only verbs.
	DefaultVerbs []string
	// Resources are written as Resource.String() renders them: "pods",
	// "deployments.apps", "pods/log"; "*" allows any.
	Resources        []string
	Namespaces       []string
	DefaultNamespace string
	// Raw allows requests to raw API paths (kubectl --raw), each checked
	// as the resource and namespace its path names.
	Raw            bool
	Timeout        time.Duration
	MaxOutputBytes int
	// Confirm are the verbs that run only once confirmed with a button;
	// "*" is every verb beyond the read-only ones (DefaultVerbs).
	Confirm []string
}

// PolicyFor returns the policy of a configured executor; ex supplies the
// read-only verbs allowed by default.
func PolicyFor(e config.Executor, ex Executor) Policy {
	defaults := ReadOnlyVerbs
	if ro, ok := ex.(ReadOnly); ok {
		defaults = ro.ReadOnlyVerbs()
	}
	return Policy{
		Executor:         e.Name,
		Verbs:            e.Policy.Verbs,
		DefaultVerbs:     defaults,
		Resources:        e.Policy.Resources,
		Namespaces:       e.Policy.Namespaces,
		DefaultNamespace: e.Policy.DefaultNamespace,
		Raw:              e.Policy.Raw,
		Timeout:          e.Policy.Timeout.D(),
		MaxOutputBytes:   e.Policy.MaxOutputBytes,
		Confirm:          e.Policy.Confirm,
	}
}

// NeedsConfirm reports whether verb runs only once confirmed with a button.
func (p Policy) NeedsConfirm(verb string) bool {
	if slices.Contains(p.Confirm, verb) {
		return true
	}
	readOnly := p.DefaultVerbs
	if len(readOnly) == 0 {
		readOnly = ReadOnlyVerbs
	}
	return slices.Contains(p.Confirm, "*") && !slices.Contains(readOnly, verb)
}

// DeniedError says which rule refused a command. It wraps ErrDenied.
type DeniedError struct {
	Rule string
}

func (e *DeniedError) Error() string { return "denied by kubechat policy: " + e.Rule }

// Unwrap makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Unwrap() error { return ErrDenied }

func deny(format string, args ...any) error { return &DeniedError{Rule: fmt.Sprintf(format, args...)} }

// Check decides whether a is allowed: its verb, every resource it names,
// every namespace it names. It returns the namespace the command runs in
// by default (the policy's default namespace), or a DeniedError naming
// the first rule that refuses it.
func (p Policy) Check(a Analysis) (string, error) {
	if !p.AllowsVerb(a.Verb) {
		return "", deny("executor %q allows the verbs %s; %q is not one of them", p.Executor, strings.Join(p.AllowedVerbs(), ", "), a.Verb)
	}
	if a.Streaming {
		return "", deny("%q would stream forever (-f, --follow, --watch); kubechat runs commands to completion: drop the flag and use --tail or --since", a.Verb)
	}
	if a.Raw && !p.Raw {
		return "", deny("executor %q does not allow raw API paths (--raw); set policy.raw to allow them", p.Executor)
	}
	for _, r := range a.Resources {
		if err := p.checkResource(r); err != nil {
			return "", err
		}
	}
	if !p.anyNamespace() {
		if a.AllNamespaces {
			return "", deny("executor %q allows the namespaces %s; all namespaces (-A) is not allowed", p.Executor, strings.Join(p.Namespaces, ", "))
		}
		for _, ns := range a.Namespaces {
			if !slices.Contains(p.Namespaces, ns) {
				return "", deny("executor %q allows the namespaces %s; %q is not one of them", p.Executor, strings.Join(p.Namespaces, ", "), ns)
			}
		}
	}
	ns := p.DefaultNamespace
	if ns == "" && !p.anyNamespace() {
		ns = p.Namespaces[0]
	}
	return ns, nil
}

// AllowsVerb reports whether the policy allows verb.
func (p Policy) AllowsVerb(verb string) bool { return verbAllowed(p.AllowedVerbs(), verb) }

// AllowsResource reports whether the policy allows r (its namespaces aside).
func (p Policy) AllowsResource(r Resource) bool { return p.checkResource(r) == nil }

func (p Policy) anyNamespace() bool {
	return len(p.Namespaces) == 0 || slices.Contains(p.Namespaces, "*")
}

// checkResource allows r if policy.resources lists it, or lists "*" (or
// nothing). Under a policy that restricts namespaces, a cluster-scoped
// resource (nodes, namespaces, clusterroles) is in none of them: it is
// allowed only where policy.resources names it.
func (p Policy) checkResource(r Resource) error {
	name := r.String()
	listed := slices.Contains(p.Resources, name)
	if !r.Namespaced && !p.anyNamespace() && !listed {
		return deny("%s is cluster-scoped, and executor %q allows only the namespaces %s; list %q in policy.resources to allow it",
			name, p.Executor, strings.Join(p.Namespaces, ", "), name)
	}
	if listed || len(p.Resources) == 0 || slices.Contains(p.Resources, "*") {
		return nil
	}
	hint := ""
	if r.Group != "" && slices.Contains(p.Resources, r.Resource) {
		// "deployments" alone is the core group, which has no deployments.
		hint = fmt.Sprintf(" (the policy's %q names the core group; write %q)", r.Resource, name)
	}
	return deny("executor %q allows the resources %s; %q is not one of them%s", p.Executor, strings.Join(p.Resources, ", "), name, hint)
}

// AllowedVerbs are the verbs the policy lists, else its defaults.
func (p Policy) AllowedVerbs() []string {
	switch {
	case len(p.Verbs) > 0:
		return p.Verbs
	case len(p.DefaultVerbs) > 0:
		return p.DefaultVerbs
	}
	return ReadOnlyVerbs
}

// verbAllowed matches "rollout restart" against "rollout restart", and any
// verb against "*". A one-word rule ("rollout") does not allow its
// subcommands: each must be listed, so that "rollout status" does not open
// "rollout undo".
func verbAllowed(allowed []string, verb string) bool {
	return slices.Contains(allowed, "*") || slices.Contains(allowed, verb)
}
