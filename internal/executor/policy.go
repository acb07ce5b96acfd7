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

// Policy is what one executor entry allows, checked by the router before Execute.
type Policy struct {
	Executor string
	Verbs    []string
	// DefaultVerbs are allowed when Verbs is empty: the executor's read-only verbs.
	DefaultVerbs     []string
	Resources        []string
	Namespaces       []string
	DefaultNamespace string
	Timeout          time.Duration
	MaxOutputBytes   int
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
		Timeout:          e.Policy.Timeout.D(),
		MaxOutputBytes:   e.Policy.MaxOutputBytes,
	}
}

// DeniedError says which rule refused a command. It wraps ErrDenied.
type DeniedError struct {
	Rule string
}

func (e *DeniedError) Error() string { return "denied by kubechat policy: " + e.Rule }

// Unwrap makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Unwrap() error { return ErrDenied }

func deny(format string, args ...any) error { return &DeniedError{Rule: fmt.Sprintf(format, args...)} }

// Check decides whether a is allowed. It returns the namespace the command
// runs in by default (the policy's default namespace), or a DeniedError.
func (p Policy) Check(a Action) (string, error) {
	verbs := p.AllowedVerbs()
	if !verbAllowed(verbs, a.Verb) {
		return "", deny("executor %q allows the verbs %s; %q is not one of them", p.Executor, strings.Join(verbs, ", "), a.Verb)
	}
	if a.Streaming {
		return "", deny("%q would stream forever (-f, --follow, --watch); kubechat runs commands to completion: drop the flag and use --tail or --since", a.Verb)
	}
	if len(p.Resources) > 0 && a.Resource != "" && !slices.Contains(p.Resources, "*") {
		for _, r := range strings.Split(a.Resource, ",") {
			if !slices.Contains(p.Resources, CanonicalResource(r)) {
				return "", deny("executor %q allows the resources %s; %q is not one of them", p.Executor, strings.Join(p.Resources, ", "), r)
			}
		}
	}
	anyNS := len(p.Namespaces) == 0 || slices.Contains(p.Namespaces, "*")
	switch {
	case a.AllNamespaces && !anyNS:
		return "", deny("executor %q allows the namespaces %s; all namespaces (-A) is not allowed", p.Executor, strings.Join(p.Namespaces, ", "))
	case a.Namespace != "" && !anyNS && !slices.Contains(p.Namespaces, a.Namespace):
		return "", deny("executor %q allows the namespaces %s; %q is not one of them", p.Executor, strings.Join(p.Namespaces, ", "), a.Namespace)
	}
	ns := p.DefaultNamespace
	if ns == "" && !anyNS && len(p.Namespaces) > 0 {
		ns = p.Namespaces[0]
	}
	return ns, nil
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

// shortNames maps kubectl's short and singular names to the plural resource.
var shortNames = map[string]string{
	"po": "pods", "pod": "pods", "deploy": "deployments", "deployment": "deployments", "svc": "services", "service": "services",
	"cm": "configmaps", "configmap": "configmaps", "secret": "secrets", "ns": "namespaces", "namespace": "namespaces",
	"no": "nodes", "node": "nodes", "rs": "replicasets", "replicaset": "replicasets", "ds": "daemonsets", "daemonset": "daemonsets",
	"sts": "statefulsets", "statefulset": "statefulsets", "ing": "ingresses", "ingress": "ingresses", "sa": "serviceaccounts",
	"serviceaccount": "serviceaccounts", "pvc": "persistentvolumeclaims", "persistentvolumeclaim": "persistentvolumeclaims",
	"pv": "persistentvolumes", "persistentvolume": "persistentvolumes", "ev": "events", "event": "events", "cj": "cronjobs",
	"cronjob": "cronjobs", "job": "jobs", "hpa": "horizontalpodautoscalers", "ep": "endpoints", "netpol": "networkpolicies",
	"pdb": "poddisruptionbudgets", "crd": "customresourcedefinitions", "crds": "customresourcedefinitions",
	"role": "roles", "rolebinding": "rolebindings", "clusterrole": "clusterroles", "clusterrolebinding": "clusterrolebindings",
	"sc": "storageclasses", "limits": "limitranges", "quota": "resourcequotas",
}

// CanonicalResource turns "po", "pod" or "pods.v1." into "pods".
func CanonicalResource(r string) string {
	r = strings.ToLower(r)
	if i := strings.IndexByte(r, '.'); i > 0 {
		r = r[:i]
	}
	if full, ok := shortNames[r]; ok {
		return full
	}
	return r
}
