package executor

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPolicy(t *testing.T) {
	readOnly := Policy{Executor: "kubectl-read", Namespaces: []string{"default", "web"}, DefaultNamespace: "web"}
	ns, err := readOnly.Check(Action{Verb: "get", Resource: "pods"})
	require.NoError(t, err)
	require.Equal(t, "web", ns)

	for name, tc := range map[string]struct {
		p    Policy
		a    Action
		want string
	}{
		"verb":           {readOnly, Action{Verb: "delete", Resource: "pod"}, `executor "kubectl-read" allows the verbs get, describe, logs`},
		"subverb":        {Policy{Executor: "k", Verbs: []string{"rollout status"}}, Action{Verb: "rollout undo"}, `"rollout undo" is not one of them`},
		"namespace":      {readOnly, Action{Verb: "get", Namespace: "kube-system"}, `executor "kubectl-read" allows the namespaces default, web; "kube-system" is not one of them`},
		"all namespaces": {readOnly, Action{Verb: "get", AllNamespaces: true}, "all namespaces (-A) is not allowed"},
		"streaming":      {readOnly, Action{Verb: "logs", Streaming: true}, "would stream forever"},
		"resource":       {Policy{Executor: "k", Resources: []string{"pods", "deployments"}}, Action{Verb: "get", Resource: "svc"}, `allows the resources pods, deployments; "svc" is not one of them`},
		"resource list":  {Policy{Executor: "k", Resources: []string{"pods"}}, Action{Verb: "get", Resource: "po,secrets"}, `"secrets" is not one of them`},
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
	_, err = Policy{Executor: "k", Resources: []string{"pods", "deployments"}}.Check(Action{Verb: "get", Resource: "po,deploy"})
	require.NoError(t, err, "short names are canonical")
	_, err = Policy{Executor: "k", Verbs: []string{"*"}}.Check(Action{Verb: "delete", AllNamespaces: true})
	require.NoError(t, err)
}
