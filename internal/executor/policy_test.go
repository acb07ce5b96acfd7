package executor

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	pods        = Resource{Resource: "pods", Namespaced: true}
	secrets     = Resource{Resource: "secrets", Namespaced: true}
	deployments = Resource{Group: "apps", Resource: "deployments", Namespaced: true}
	podMetrics  = Resource{Group: "metrics.k8s.io", Resource: "pods", Namespaced: true}
	nodes       = Resource{Resource: "nodes"}
	podLogs     = Resource{Resource: "pods", Subresource: "log", Namespaced: true}
)

func TestResourceString(t *testing.T) {
	require.Equal(t, "pods", pods.String())
	require.Equal(t, "deployments.apps", deployments.String())
	require.Equal(t, "pods.metrics.k8s.io", podMetrics.String())
	require.Equal(t, "pods/log", podLogs.String())
}

func TestPolicy(t *testing.T) {
	readOnly := Policy{Executor: "kubectl-read", Namespaces: []string{"default", "web"}, DefaultNamespace: "web"}
	ns, err := readOnly.Check(Analysis{Verb: "get", Resources: []Resource{pods}})
	require.NoError(t, err)
	require.Equal(t, "web", ns)
	first, err := Policy{Executor: "k", Namespaces: []string{"api", "web"}}.Check(Analysis{Verb: "get"})
	require.NoError(t, err)
	require.Equal(t, "api", first, "without a default, the first allowed namespace")

	ops := Policy{Executor: "ops", Resources: []string{"pods", "deployments"}}
	for name, tc := range map[string]struct {
		p    Policy
		a    Analysis
		want string
	}{
		"verb":           {readOnly, Analysis{Verb: "delete", Resources: []Resource{pods}}, `executor "kubectl-read" allows the verbs get, describe, logs`},
		"subverb":        {Policy{Executor: "k", Verbs: []string{"rollout status"}}, Analysis{Verb: "rollout undo"}, `"rollout undo" is not one of them`},
		"namespace":      {readOnly, Analysis{Verb: "get", Namespaces: []string{"kube-system"}}, `executor "kubectl-read" allows the namespaces default, web; "kube-system" is not one of them`},
		"second ns":      {readOnly, Analysis{Verb: "get", Namespaces: []string{"web", "kube-system"}}, `"kube-system" is not one of them`},
		"all namespaces": {readOnly, Analysis{Verb: "get", AllNamespaces: true}, "all namespaces (-A) is not allowed"},
		"streaming":      {readOnly, Analysis{Verb: "logs", Streaming: true}, "would stream forever"},
		"raw":            {readOnly, Analysis{Verb: "get", Raw: true}, "does not allow raw API paths (--raw); set policy.raw"},
		"resource":       {ops, Analysis{Verb: "get", Resources: []Resource{{Resource: "services", Namespaced: true}}}, `allows the resources pods, deployments; "services" is not one of them`},
		"second":         {ops, Analysis{Verb: "get", Resources: []Resource{pods, secrets}}, `"secrets" is not one of them`},
		"group":          {ops, Analysis{Verb: "get", Resources: []Resource{podMetrics}}, `"pods.metrics.k8s.io" is not one of them`},
		"core hint":      {ops, Analysis{Verb: "get", Resources: []Resource{deployments}}, `the policy's "deployments" names the core group; write "deployments.apps"`},
		"subresource":    {ops, Analysis{Verb: "get", Raw: true, Resources: []Resource{podLogs}}, `does not allow raw`},
		"cluster-scoped": {readOnly, Analysis{Verb: "get", Resources: []Resource{nodes}}, `nodes is cluster-scoped, and executor "kubectl-read" allows only the namespaces default, web; list "nodes" in policy.resources`},
		"star not enough": {Policy{Executor: "k", Resources: []string{"*"}, Namespaces: []string{"web"}},
			Analysis{Verb: "get", Resources: []Resource{nodes}}, "nodes is cluster-scoped"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.p.Check(tc.a)
			require.ErrorIs(t, err, ErrDenied)
			var d *DeniedError
			require.True(t, errors.As(err, &d))
			require.Contains(t, err.Error(), "denied by kubechat policy: ")
			require.Contains(t, err.Error(), tc.want)
		})
	}
	for name, tc := range map[string]struct {
		p Policy
		a Analysis
	}{
		"listed":             {Policy{Executor: "k", Resources: []string{"pods", "deployments.apps"}}, Analysis{Verb: "get", Resources: []Resource{pods, deployments}}},
		"any verb":           {Policy{Executor: "k", Verbs: []string{"*"}}, Analysis{Verb: "delete", AllNamespaces: true}},
		"listed node":        {Policy{Executor: "k", Resources: []string{"nodes"}, Namespaces: []string{"web"}}, Analysis{Verb: "get", Resources: []Resource{nodes}}},
		"node, any ns":       {Policy{Executor: "k"}, Analysis{Verb: "get", Resources: []Resource{nodes}}},
		"raw allowed":        {Policy{Executor: "k", Raw: true, Resources: []string{"pods/log"}}, Analysis{Verb: "get", Raw: true, Resources: []Resource{podLogs}}},
		"no objects":         {Policy{Executor: "k", Resources: []string{"pods"}, Namespaces: []string{"web"}}, Analysis{Verb: "version"}},
		"named ns":           {readOnly, Analysis{Verb: "get", Namespaces: []string{"default"}, Resources: []Resource{pods}}},
		"any ns with a star": {Policy{Executor: "k", Namespaces: []string{"*"}}, Analysis{Verb: "get", AllNamespaces: true}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.p.Check(tc.a)
			require.NoError(t, err)
		})
	}
	require.True(t, readOnly.AllowsVerb("get"))
	require.False(t, readOnly.AllowsVerb("delete"))
	require.True(t, ops.AllowsResource(pods))
	require.False(t, ops.AllowsResource(secrets))
}

func TestNeedsConfirm(t *testing.T) {
	p := Policy{Verbs: []string{"*"}, Confirm: []string{"*"}}
	require.True(t, p.NeedsConfirm("rollout undo"))
	require.True(t, p.NeedsConfirm("delete"))
	require.False(t, p.NeedsConfirm("get"), "read-only verbs never ask")
	require.False(t, p.NeedsConfirm("rollout status"))
	p = Policy{Verbs: []string{"*"}, Confirm: []string{"scale"}, DefaultVerbs: []string{"list"}}
	require.True(t, p.NeedsConfirm("scale"))
	require.False(t, p.NeedsConfirm("delete"), "only what is listed")
	require.False(t, Policy{}.NeedsConfirm("delete"), "nothing asks by default")
}
