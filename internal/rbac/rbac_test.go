package rbac_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubechat/kubechat/internal/app"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/rbac"
)

func TestName(t *testing.T) {
	for release, want := range map[string]string{
		"kubechat":                    "kubechat",
		"ops":                         "ops-kubechat",
		"ops-kubechat-eu":             "ops-kubechat-eu",
		strings.Repeat("a", 54) + "-": strings.Repeat("a", 54) + "--kubecha",
		strings.Repeat("a", 55):       strings.Repeat("a", 55) + "-kubecha",
		strings.Repeat("b", 62) + "-": strings.Repeat("b", 62),
	} {
		require.Equal(t, want, rbac.Name(release), release)
		require.LessOrEqual(t, len(rbac.Name(release)), 63)
	}
}

// TestReleasesOfOneNameNeverShareAnObject: two installations of the same
// release name, in two namespaces, with identities and command pods in
// the same third namespace, have no object in common.
func TestReleasesOfOneNameNeverShareAnObject(t *testing.T) {
	cfg := load(t, `cluster: {name: x}
platforms: [{name: c, type: log}]
channels:
  - {name: a, platform: c, bindings: {executors: [kubectl]}, identity: {serviceAccount: shared/reader}}
  - {name: b, platform: c, bindings: {executors: [pods]}, identity: {serviceAccount: shared/runner}}
executors: [{type: kubectl}, {name: pods, type: kubectl, isolation: pod}]
sources: [{name: s, type: kubernetes, kubernetes: {resources: [{type: v1/pods}]}}]
`)
	seen := map[string]string{}
	for _, ns := range []string{"team-a", "team-b"} {
		c := *cfg
		c.Cluster.Namespace = ns
		objs, err := rbac.Objects(&c, rbac.Options{Release: "kubechat"})
		require.NoError(t, err)
		for key := range byKey(objs) {
			require.NotContains(t, seen, key, "installed in %s and in %s", seen[key], ns)
			seen[key] = ns
		}
	}
	require.Contains(t, seen, "ClusterRole /kubechat-team-a-watch")
	require.Contains(t, seen, "Role shared/kubechat-team-b-command-pods")
}

func load(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(app.Known(), config.File{Name: "rbac.yaml", Data: []byte(text)})
	require.NoError(t, err)
	return cfg
}

// byKey indexes objects as "Kind namespace/name".
func byKey(objs []client.Object) map[string]client.Object {
	out := map[string]client.Object{}
	for _, o := range objs {
		var kind string
		switch o.(type) {
		case *rbacv1.Role:
			kind = "Role"
		case *rbacv1.RoleBinding:
			kind = "RoleBinding"
		case *rbacv1.ClusterRole:
			kind = "ClusterRole"
		case *rbacv1.ClusterRoleBinding:
			kind = "ClusterRoleBinding"
		}
		out[kind+" "+o.GetNamespace()+"/"+o.GetName()] = o
	}
	return out
}

// TestObjectsFollowWhereCommandsRun: impersonation only for identities
// whose commands the agent runs itself, pods only where command pods run.
func TestObjectsFollowWhereCommandsRun(t *testing.T) {
	cfg := load(t, `cluster: {name: x, namespace: state}
platforms: [{name: c, type: log}, {name: d, type: log}, {name: p, type: log}]
channels:
  - {name: a, platform: c, bindings: {executors: [kubectl]}, identity: {user: "system:serviceaccount:team-x:bot", groups: [ops]}}
  - {name: alerts, platform: d, identity: {user: nobody}}
  - {name: pods, platform: p, bindings: {executors: [kubectl-pods, run]}, identity: {serviceAccount: team-p/runner}}
users:
  - {platform: c, id: U1, identity: {serviceAccount: team-y/alice}}
  - {platform: d, id: U2, identity: {user: bob}}
  - {platform: p, id: U3, identity: {serviceAccount: team-z/carol}}
executors:
  - {type: kubectl}
  - {name: kubectl-pods, type: kubectl, isolation: pod}
  - {type: run, pod: {namespace: ignored}, settings: {namespace: jobs, templates: [{name: t, image: i, command: [x]}]}}
sources:
  - name: s
    type: kubernetes
    kubernetes:
      resources: [{type: v1/pods, events: [error]}, {type: apps/v1/deployments, events: [error]}, {type: v1/pods, events: [create]}]
`)
	objs, err := rbac.Objects(cfg, rbac.Options{Namespace: "agent", Release: "ops", ServiceAccount: "bot"})
	require.NoError(t, err)
	m := byKey(objs)
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.GetNamespace()+"/"+o.GetName())
	}
	require.Equal(t, []string{
		"state/ops-kubechat", "state/ops-kubechat",
		"/ops-kubechat-agent-watch", "/ops-kubechat-agent-watch",
		"/ops-kubechat-agent-impersonate", "/ops-kubechat-agent-impersonate",
		"team-x/ops-kubechat-agent-impersonate", "team-x/ops-kubechat-agent-impersonate",
		"team-y/ops-kubechat-agent-impersonate", "team-y/ops-kubechat-agent-impersonate",
		"jobs/ops-kubechat-agent-command-pods", "jobs/ops-kubechat-agent-command-pods",
		"team-p/ops-kubechat-agent-command-pods", "team-p/ops-kubechat-agent-command-pods",
		"team-z/ops-kubechat-agent-command-pods", "team-z/ops-kubechat-agent-command-pods",
	}, keys, "the ConfigMaps and Lease in cluster.namespace; no pods in the run executor's unused pod.namespace; "+
		"what is cluster-wide or in other namespaces is named after the agent's namespace too")

	imp := m["ClusterRole /ops-kubechat-agent-impersonate"].(*rbacv1.ClusterRole)
	require.Len(t, imp.Rules, 1, "no users: bob's platform and the alerts channel run no commands, and bot is a ServiceAccount")
	require.Equal(t, []string{"ops", "system:authenticated", "system:serviceaccounts", "system:serviceaccounts:team-y"}, imp.Rules[0].ResourceNames)
	bot := m["Role team-x/ops-kubechat-agent-impersonate"].(*rbacv1.Role)
	require.Equal(t, []string{"bot"}, bot.Rules[0].ResourceNames, "the API server checks system:serviceaccount:team-x:bot as that ServiceAccount")

	watch := m["ClusterRole /ops-kubechat-agent-watch"].(*rbacv1.ClusterRole)
	require.Len(t, watch.Rules, 2, "pods once")
	binding := m["RoleBinding state/ops-kubechat"].(*rbacv1.RoleBinding)
	require.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "bot", Namespace: "agent"}}, binding.Subjects)
	require.Equal(t, rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "ops-kubechat"}, binding.RoleRef)
}

func TestDefaults(t *testing.T) {
	cfg := load(t, "cluster: {name: x}\n")
	objs, err := rbac.Objects(cfg, rbac.Options{})
	require.NoError(t, err)
	require.Len(t, objs, 2, "nothing watched, no commands: the agent's own ConfigMaps and Lease")
	role := objs[0].(*rbacv1.Role)
	require.Equal(t, "kubechat", role.Namespace)
	require.Equal(t, "kubechat", role.Name)
	require.Equal(t, []string{"kubechat-leader"}, role.Rules[4].ResourceNames)
	require.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "kubechat", Namespace: "kubechat"}}, objs[1].(*rbacv1.RoleBinding).Subjects)
}

// TestYAML: the documents decode back into the same objects, with their
// kinds, so kubectl apply -f takes them.
func TestYAML(t *testing.T) {
	cfg := load(t, `cluster: {name: x}
platforms: [{name: c, type: log}]
channels: [{name: a, platform: c, bindings: {executors: [kubectl]}, identity: {serviceAccount: web/reader}}]
executors: [{type: kubectl}]
`)
	objs, err := rbac.Objects(cfg, rbac.Options{})
	require.NoError(t, err)
	b, err := rbac.YAML(objs)
	require.NoError(t, err)
	require.NotContains(t, string(b), "creationTimestamp")
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var kinds []string
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.Equal(t, "rbac.authorization.k8s.io/v1", m["apiVersion"])
		kinds = append(kinds, m["kind"].(string))
	}
	require.Equal(t, []string{"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}, kinds)
}

// TestArgoCDGrants: each channel's identity may read Applications in its
// argocd policy's namespaces, or everywhere when the policy allows any;
// it may patch them only where the policy lets it sync, refresh or roll
// back. The agent itself only watches them, as its source does.
func TestArgoCDGrants(t *testing.T) {
	cfg := load(t, `cluster: {name: x, namespace: kc}
platforms: [{name: c, type: log}]
channels:
  - {name: dev, platform: c, bindings: {sources: [apps], executors: [argo-read]}, identity: {serviceAccount: team-a/reader}}
  - {name: ops, platform: c, bindings: {executors: [argo-ops]}, identity: {user: "kubechat:ops", groups: [ops]}}
  - {name: all, platform: c, bindings: {executors: [argo-any]}, identity: {user: "system:serviceaccount:team-x:bot"}}
executors:
  - {name: argo-read, type: argocd, policy: {namespaces: [argocd, team-a]}}
  - {name: argo-ops, type: argocd, policy: {verbs: [app get, app sync], namespaces: [argocd]}}
  - {name: argo-any, type: argocd, policy: {verbs: ["*"]}}
sources:
  - {name: apps, type: kubernetes, kubernetes: {resources: [{type: argoproj.io/v1alpha1/applications, events: [error]}]}}
`)
	objs, err := rbac.Objects(cfg, rbac.Options{})
	require.NoError(t, err)
	m := byKey(objs)
	read := []string{"get", "list", "watch"}
	write := []string{"get", "list", "watch", "patch"}
	for key, want := range map[string][]string{
		"Role argocd/kubechat-kc-argocd-dev-argo-read": read,
		"Role team-a/kubechat-kc-argocd-dev-argo-read": read,
		"Role argocd/kubechat-kc-argocd-ops-argo-ops":  write,
		"ClusterRole /kubechat-kc-argocd-all-argo-any": write,
	} {
		require.Contains(t, m, key)
		var rules []rbacv1.PolicyRule
		switch r := m[key].(type) {
		case *rbacv1.Role:
			rules = r.Rules
		case *rbacv1.ClusterRole:
			rules = r.Rules
		}
		require.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{"argoproj.io"}, Resources: []string{"applications"}, Verbs: want}}, rules, key)
	}
	require.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: "team-a"}},
		m["RoleBinding argocd/kubechat-kc-argocd-dev-argo-read"].(*rbacv1.RoleBinding).Subjects)
	require.Equal(t, []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "kubechat:ops"}},
		m["RoleBinding argocd/kubechat-kc-argocd-ops-argo-ops"].(*rbacv1.RoleBinding).Subjects, "the user, not its groups")
	require.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "bot", Namespace: "team-x"}},
		m["ClusterRoleBinding /kubechat-kc-argocd-all-argo-any"].(*rbacv1.ClusterRoleBinding).Subjects)
	watch := m["ClusterRole /kubechat-kc-watch"].(*rbacv1.ClusterRole)
	require.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{"argoproj.io"}, Resources: []string{"applications"}, Verbs: []string{"list", "watch"}}}, watch.Rules)
}

// TestGitHubSourceLists: the agent itself lists what a github source
// looks up for a pull request: Flux's Kustomizations and GitRepositories,
// and Argo CD's Applications; nothing more.
func TestGitHubSourceLists(t *testing.T) {
	t.Setenv("HOOK_SECRET", "s3cret")
	t.Setenv("GH_TOKEN", "t0ken")
	cfg := load(t, `cluster: {name: x}
sources:
  - {name: prs, type: github, github: {webhookSecret: {fromEnv: HOOK_SECRET}, api: {token: {fromEnv: GH_TOKEN}}}}
`)
	objs, err := rbac.Objects(cfg, rbac.Options{})
	require.NoError(t, err)
	watch := byKey(objs)["ClusterRole /kubechat-kubechat-watch"].(*rbacv1.ClusterRole)
	require.Equal(t, []rbacv1.PolicyRule{
		{APIGroups: []string{"kustomize.toolkit.fluxcd.io"}, Resources: []string{"kustomizations"}, Verbs: []string{"list"}},
		{APIGroups: []string{"source.toolkit.fluxcd.io"}, Resources: []string{"gitrepositories"}, Verbs: []string{"list"}},
		{APIGroups: []string{"argoproj.io"}, Resources: []string{"applications"}, Verbs: []string{"list"}},
	}, watch.Rules)
}
