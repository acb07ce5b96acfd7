package chart_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubechat/kubechat/configs"
	"github.com/kubechat/kubechat/internal/app"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/rbac"
)

// rbacCases are values, besides the examples, that reach every branch of
// the RBAC derivation: users and groups, the Ingress check, command pods
// by isolation and by the run executor, per-platform users, a user that
// is a ServiceAccount's name, a channel without executors, another
// release name, ServiceAccount and Lease, a github source's list rules.
var rbacCases = map[string]struct{ release, values string }{
	"argocd": {"kubechat", `config:
  cluster: {name: x}
  platforms: [{name: c, type: log}]
  channels:
    - {name: dev, platform: c, bindings: {executors: [argo-read]}, identity: {serviceAccount: team-a/reader}}
    - {name: ops, platform: c, bindings: {executors: [argo-ops, kubectl]}, identity: {user: "kubechat:ops", groups: [ops]}}
    - {name: all, platform: c, bindings: {executors: [argo-any]}, identity: {user: "system:serviceaccount:team-x:bot"}}
  executors:
    - {name: argo-read, type: argocd, policy: {namespaces: [team-a, argocd]}}
    - {name: argo-ops, type: argocd, policy: {verbs: [app get, app rollback], namespaces: [argocd]}}
    - {name: argo-any, type: argocd, policy: {verbs: ["*"], namespaces: ["*"]}}
    - {type: kubectl}
`},
	"users": {"kubechat", `config:
  cluster: {name: x}
  platforms: [{name: c, type: log}]
  channels:
    - name: sre
      platform: c
      bindings: {executors: [kubectl]}
      identity: {user: "kubechat:sre", groups: [sre]}
  users:
    - {platform: c, id: U1, identity: {user: alice@example.com, groups: [sre, dba]}}
  executors: [{type: kubectl}]
  sources:
    - name: net
      type: kubernetes
      kubernetes:
        resources: [{type: networking.k8s.io/v1/ingresses, events: [create]}, {type: v1/pods}, {type: v1/pods, events: [error]}]
        recommendations: {ingressBackends: true}
`},
	"command-pods": {"kubechat", `config:
  cluster: {name: x}
  platforms: [{name: c, type: log}]
  channels:
    - {name: a, platform: c, bindings: {executors: [kubectl]}, identity: {serviceAccount: team-a/reader}}
    - {name: b, platform: c, isolation: pod, bindings: {executors: [helm]}, identity: {serviceAccount: team-b/reader}}
    - {name: c, platform: c, bindings: {executors: [helm]}, identity: {serviceAccount: team-c/reader}}
    - {name: d, platform: c, bindings: {executors: [run]}, identity: {user: dave}}
  users:
    - {platform: c, id: U1, identity: {serviceAccount: team-u/alice}}
  executors:
    - {type: kubectl, isolation: pod, pod: {namespace: team-a}}
    - {type: helm}
    - {type: run, pod: {namespace: not-used}, settings: {namespace: jobs, templates: [{name: t, image: i, command: [x], serviceAccount: jobs/runner}]}}
`},
	"platforms": {"ops", `serviceAccount: {name: kubechat-agent}
config:
  cluster: {name: x}
  platforms: [{name: c, type: log}, {name: d, type: log}, {name: p, type: log}]
  channels:
    - {name: a, platform: c, bindings: {executors: [kubectl]}, identity: {user: "system:serviceaccount:team-x:bot", groups: [ops]}}
    - {name: alerts, platform: d, identity: {user: nobody}}
    - {name: pods, platform: p, bindings: {executors: [kubectl-pods]}, identity: {serviceAccount: team-p/runner}}
  users:
    - {platform: c, id: U1, identity: {serviceAccount: team-y/alice}}
    - {platform: d, id: U2, identity: {user: bob}}
    - {platform: p, id: U3, identity: {serviceAccount: team-z/carol}}
  executors:
    - {type: kubectl}
    - {name: kubectl-pods, type: kubectl, isolation: pod}
  ha: {leaseName: ops-leader}
`},
	"github-source": {"kubechat", `config:
  cluster: {name: x}
  platforms: [{name: c, type: log}]
  channels: [{name: a, platform: c, bindings: {sources: [prs, pods]}, identity: {user: u}}]
  sources:
    - {name: prs, type: github, github: {webhookSecret: "${GITHUB_WEBHOOK_SECRET}", api: {token: "${GITHUB_TOKEN}"}}}
    - {name: pods, type: kubernetes, kubernetes: {resources: [{type: v1/pods, events: [error]}]}}
`},
	"state-name": {"kubechat", `config:
  cluster: {name: x, stateName: team-b}
  platforms: [{name: c, type: log}]
  channels: [{name: a, platform: c, bindings: {executors: [kubectl]}, identity: {user: u}}]
  executors: [{type: kubectl}]
`},
}

// TestRBACMatchesGo: for every example and case, the chart's RBAC objects
// are exactly those that package rbac ("kubechat rbac") derives from the
// config the chart gives the agent: the same objects, names, namespaces,
// grants and subjects. The chart cannot run Go, so it derives them again
// in its templates; this test is what keeps the two derivations one.
func TestRBACMatchesGo(t *testing.T) {
	for k, v := range configs.ExampleEnv {
		t.Setenv(k, v)
	}
	type input struct {
		release string
		vals    map[string]any
	}
	inputs := map[string]input{}
	for name, file := range examples(t) {
		inputs[name] = input{"kubechat", readValues(t, file)}
	}
	for name, c := range rbacCases {
		inputs[name] = input{c.release, valuesOf(t, c.values)}
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			objs, err := renderRelease(t, in.release, in.vals)
			require.NoError(t, err)
			cm := find(t, objs, "ConfigMap", rbac.Name(in.release)+"-config")
			text, _, _ := unstructured.NestedString(cm.Object, "data", "kubechat.yaml")
			cfg, err := config.Parse(app.Known(), config.File{Name: name + ".yaml", Data: []byte(text)})
			require.NoError(t, err)
			sa, _, _ := unstructured.NestedString(find(t, objs, "Deployment", rbac.Name(in.release)).Object,
				"spec", "template", "spec", "serviceAccountName")

			derived, err := rbac.Objects(cfg, rbac.Options{Namespace: "kubechat", Release: in.release, ServiceAccount: sa})
			require.NoError(t, err)
			var want []rbacObject
			for _, o := range derived {
				m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
				require.NoError(t, err)
				want = append(want, normalize(&unstructured.Unstructured{Object: m}, ""))
			}
			var got []rbacObject
			for _, o := range objs {
				if o.GroupVersionKind().Group == "rbac.authorization.k8s.io" {
					got = append(got, normalize(o, "kubechat"))
				}
			}
			slices.SortFunc(want, compareRBAC)
			slices.SortFunc(got, compareRBAC)
			require.NotEmpty(t, want)
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("the chart's RBAC (+) differs from package rbac's (-) for %s:\n%s", name, d)
			}
		})
	}
}

// rbacObject is what an RBAC object grants, in a form where order does
// not count where RBAC does not count it: each rule is expanded into one
// grant per group, resource, verb and name, and subjects are sorted.
type rbacObject struct {
	Kind, Namespace, Name string
	Grants                []string
	RoleRef               string
	Subjects              []string
}

func compareRBAC(a, b rbacObject) int {
	return strings.Compare(a.Kind+"/"+a.Namespace+"/"+a.Name, b.Kind+"/"+b.Namespace+"/"+b.Name)
}

// normalize reads o; defaultNS is the namespace of a namespaced object
// that names none (Helm installs it in the release's namespace).
func normalize(o *unstructured.Unstructured, defaultNS string) rbacObject {
	r := rbacObject{Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}
	if r.Namespace == "" && (r.Kind == "Role" || r.Kind == "RoleBinding") {
		r.Namespace = defaultNS
	}
	strs := func(m map[string]any, key string) []string {
		v, _, _ := unstructured.NestedStringSlice(m, key)
		return v
	}
	rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
	for _, raw := range rules {
		rule := raw.(map[string]any)
		names := strs(rule, "resourceNames")
		if len(names) == 0 {
			names = []string{"(any name)"}
		}
		for _, g := range strs(rule, "apiGroups") {
			for _, res := range strs(rule, "resources") {
				for _, v := range strs(rule, "verbs") {
					for _, n := range names {
						r.Grants = append(r.Grants, fmt.Sprintf("%s %q %s %s", v, g, res, n))
					}
				}
			}
		}
		for _, u := range strs(rule, "nonResourceURLs") {
			for _, v := range strs(rule, "verbs") {
				r.Grants = append(r.Grants, v+" "+u)
			}
		}
	}
	slices.Sort(r.Grants)
	r.Grants = slices.Compact(r.Grants)
	if ref, ok, _ := unstructured.NestedStringMap(o.Object, "roleRef"); ok {
		r.RoleRef = ref["apiGroup"] + "/" + ref["kind"] + "/" + ref["name"]
	}
	subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
	for _, raw := range subjects {
		s := raw.(map[string]any)
		r.Subjects = append(r.Subjects, fmt.Sprintf("%v/%v/%v/%v", s["apiGroup"], s["kind"], s["namespace"], s["name"]))
	}
	slices.Sort(r.Subjects)
	return r
}
