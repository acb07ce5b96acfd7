// Package chart_test checks the kubechat Helm chart with the Helm SDK: it
// lints, its values schema refuses bad values, it renders a valid agent
// config and the RBAC that config needs, and (with the test control plane)
// every rendered object passes a server-side dry run.
package chart_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/strvals"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/kubechat/kubechat/configs"
	"github.com/kubechat/kubechat/internal/app"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Nodes: 1}) }

const chartDir = "kubechat"

// examples are the chart values files in configs/chart, by name.
func examples(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("../configs/chart/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string]string{}
	for _, f := range files {
		out[strings.TrimSuffix(filepath.Base(f), ".yaml")] = f
	}
	return out
}

func readValues(t *testing.T, file string) map[string]any {
	t.Helper()
	if file == "" {
		return map[string]any{}
	}
	v, err := chartutil.ReadValuesFile(file)
	require.NoError(t, err)
	return v.AsMap()
}

func valuesOf(t *testing.T, text string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValues([]byte(text))
	require.NoError(t, err)
	return v.AsMap()
}

// render is helm template: the chart's objects for vals in namespace kubechat.
func render(t *testing.T, vals map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	return renderRelease(t, "kubechat", vals)
}

// renderRelease renders the release named release in namespace kubechat.
func renderRelease(t *testing.T, release string, vals map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	return renderIn(t, release, "kubechat", vals)
}

// renderIn renders the release named release in namespace.
func renderIn(t *testing.T, release, namespace string, vals map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	require.NoError(t, err)
	in := action.NewInstall(&action.Configuration{})
	in.DryRun, in.ClientOnly, in.Replace = true, true, true
	in.ReleaseName, in.Namespace = release, namespace
	rel, err := in.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(rel.Manifest), 4096)
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		require.NoError(t, err)
		if m != nil {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

func mustRender(t *testing.T, vals map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := render(t, vals)
	require.NoError(t, err)
	return objs
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among the rendered objects", kind, name)
	return nil
}

// TestLintsWithEveryExample: helm lint --strict passes with the chart's
// defaults and with every example: no error and no warning.
func TestLintsWithEveryExample(t *testing.T) {
	lintOK(t, "defaults", map[string]any{})
	for name, file := range examples(t) {
		lintOK(t, name, readValues(t, file))
	}
}

// lintOK runs what helm lint --strict runs, which fails on warnings too.
func lintOK(t *testing.T, name string, vals map[string]any) {
	t.Helper()
	l := action.NewLint()
	l.Strict, l.Namespace = true, "kubechat"
	res := l.Run([]string{chartDir}, vals)
	require.Equal(t, 1, res.TotalChartsLinted, name)
	require.Empty(t, res.Errors, "%s: %v", name, res.Messages)
	for _, m := range res.Messages {
		require.Less(t, m.Severity, support.WarningSev, "%s: %s", name, m.Error())
	}
}

// TestRenderedConfigIsValid: every example renders an agent config that the
// agent's own loader accepts, with the chart's namespace and HA decisions.
func TestRenderedConfigIsValid(t *testing.T) {
	for k, v := range configs.ExampleEnv {
		t.Setenv(k, v)
	}
	for name, file := range examples(t) {
		objs := mustRender(t, readValues(t, file))
		cm := find(t, objs, "ConfigMap", "kubechat-config")
		text, _, _ := unstructured.NestedString(cm.Object, "data", "kubechat.yaml")
		cfg, err := config.Parse(app.Known(), config.File{Name: name + ".yaml", Data: []byte(text)})
		require.NoError(t, err, "%s renders a config the agent refuses:\n%s", name, text)
		require.Equal(t, "kubechat", cfg.Cluster.Namespace, name)
		require.Equal(t, ":8080", cfg.HTTP.Listen, name)
		replicas, _, _ := unstructured.NestedFieldNoCopy(find(t, objs, "Deployment", "kubechat").Object, "spec", "replicas")
		require.Equal(t, replicas.(float64) > 1, cfg.HA.LeaderElection, "%s: leader election follows the replica count", name)
		require.NotNil(t, cfg.HA.ButtonKey, "%s: buttons are signed with the shared key", name)
		key, _, _ := unstructured.NestedString(find(t, objs, "Secret", "kubechat-buttons").Object, "data", "key")
		require.Len(t, key, 64, "%s: a 48-character random key, base64", name)
	}
}

func TestDeploymentIsLockedDown(t *testing.T) {
	objs := mustRender(t, map[string]any{})
	d := find(t, objs, "Deployment", "kubechat")
	spec := d.Object["spec"].(map[string]any)
	require.EqualValues(t, 2, spec["replicas"])
	pod := spec["template"].(map[string]any)["spec"].(map[string]any)
	psc := pod["securityContext"].(map[string]any)
	require.Equal(t, true, psc["runAsNonRoot"])
	require.Equal(t, map[string]any{"type": "RuntimeDefault"}, psc["seccompProfile"])
	c := pod["containers"].([]any)[0].(map[string]any)
	sc := c["securityContext"].(map[string]any)
	require.Equal(t, true, sc["readOnlyRootFilesystem"])
	require.Equal(t, false, sc["allowPrivilegeEscalation"])
	require.Equal(t, map[string]any{"drop": []any{"ALL"}}, sc["capabilities"])
	require.Equal(t, "/healthz", c["livenessProbe"].(map[string]any)["httpGet"].(map[string]any)["path"])
	require.Equal(t, "/readyz", c["readinessProbe"].(map[string]any)["httpGet"].(map[string]any)["path"])
	res := c["resources"].(map[string]any)
	require.Equal(t, "256Mi", res["limits"].(map[string]any)["memory"])
	require.Equal(t, "128Mi", res["requests"].(map[string]any)["memory"])
	require.Equal(t, []any{"run", "--config", "/etc/kubechat/kubechat.yaml"}, c["args"], "exec form, no shell")
	require.Equal(t, "GOMEMLIMIT", c["env"].([]any)[0].(map[string]any)["name"])

	sum := func(objs []*unstructured.Unstructured) string {
		return find(t, objs, "Deployment", "kubechat").Object["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)["annotations"].(map[string]any)["checksum/config"].(string)
	}
	changed := mustRender(t, valuesOf(t, "config:\n  cluster:\n    name: other\n"))
	require.NotEqual(t, sum(objs), sum(changed), "a config change rolls the pods")
}

// TestGOMEMLIMIT: the Go runtime's soft memory limit is 90% of the
// container's memory limit, in bytes, whatever way the limit is written.
func TestGOMEMLIMIT(t *testing.T) {
	gomemlimit := func(t *testing.T, objs []*unstructured.Unstructured) string {
		t.Helper()
		containers, _, _ := unstructured.NestedSlice(find(t, objs, "Deployment", "kubechat").Object, "spec", "template", "spec", "containers")
		for _, e := range containers[0].(map[string]any)["env"].([]any) {
			if e.(map[string]any)["name"] == "GOMEMLIMIT" {
				return e.(map[string]any)["value"].(string)
			}
		}
		t.Fatal("no GOMEMLIMIT")
		return ""
	}
	require.Equal(t, "241591910", gomemlimit(t, mustRender(t, map[string]any{})), "90% of the default 256Mi")
	for memory, want := range map[string]string{
		"1Gi":       "966367641",
		"1.5Gi":     "1449551462",
		"500M":      "450000000",
		"268435456": "241591910",
		"1e9":       "900000000",
		"2.5e+08":   "225000000",
	} {
		objs := mustRender(t, valuesOf(t, "resources: {limits: {memory: "+memory+"}}"))
		require.Equal(t, want, gomemlimit(t, objs), memory)
	}
	_, err := render(t, valuesOf(t, "resources: {limits: {memory: lots}}"))
	require.ErrorContains(t, err, `resources.limits.memory: "lots" is not a memory quantity such as 256Mi or 1G`)
}

// rules returns the rules of the named ClusterRole or Role.
func rules(t *testing.T, objs []*unstructured.Unstructured, kind, name string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range find(t, objs, kind, name).Object["rules"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

func TestRBACFollowsConfig(t *testing.T) {
	objs := mustRender(t, readValues(t, "../configs/chart/slack.yaml"))
	watch := rules(t, objs, "ClusterRole", "kubechat-kubechat-watch")
	var watched []string
	for _, r := range watch {
		require.Equal(t, []any{"list", "watch"}, r["verbs"])
		watched = append(watched, r["apiGroups"].([]any)[0].(string)+"/"+r["resources"].([]any)[0].(string))
	}
	require.ElementsMatch(t, []string{"/pods", "apps/deployments", "batch/jobs", "/secrets"}, watched,
		"exactly the resources the sources watch")
	imp := rules(t, objs, "ClusterRole", "kubechat-kubechat-impersonate")
	require.Len(t, imp, 1, "no user identities: groups only")
	require.Equal(t, []any{"system:authenticated", "system:serviceaccounts", "system:serviceaccounts:kubechat"}, imp[0]["resourceNames"])
	sa := rules(t, objs, "Role", "kubechat-kubechat-impersonate")
	require.Equal(t, []any{"platform-team-reader"}, sa[0]["resourceNames"])
	require.Equal(t, []any{"serviceaccounts"}, sa[0]["resources"])
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" {
			for _, r := range rules(t, objs, "ClusterRole", o.GetName()) {
				require.NotContains(t, r["verbs"], "*", "no wildcard verbs")
				require.NotContains(t, r["resources"], "*", "no wildcard resources")
				if slices.Contains(r["resources"].([]any), any("secrets")) {
					require.NotContains(t, r["verbs"], "get", "no Secret reads unless a recommendation needs them")
				}
			}
		}
	}

	users := mustRender(t, valuesOf(t, `config:
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
        resources: [{type: networking.k8s.io/v1/ingresses, events: [create]}]
        recommendations: {ingressBackends: true}
`))
	imp = rules(t, users, "ClusterRole", "kubechat-kubechat-impersonate")
	require.Equal(t, []any{"alice@example.com", "kubechat:sre"}, imp[0]["resourceNames"])
	require.Equal(t, []any{"dba", "sre", "system:authenticated"}, imp[1]["resourceNames"])
	watch = rules(t, users, "ClusterRole", "kubechat-kubechat-watch")
	require.Equal(t, []any{"services", "secrets"}, watch[1]["resources"], "the Ingress check reads Services and TLS Secrets")
	require.Equal(t, []any{"get"}, watch[1]["verbs"])
}

// TestReleasesInTwoNamespacesDoNotCollide: two releases of the same name
// in two namespaces render no cluster-scoped name in common, and no
// object at all in common, even where both place Roles in one third
// namespace (identities and command pods there).
func TestReleasesInTwoNamespacesDoNotCollide(t *testing.T) {
	vals := map[string]map[string]any{"shared": valuesOf(t, `config:
  cluster: {name: x}
  platforms: [{name: c, type: log}]
  channels:
    - {name: a, platform: c, bindings: {executors: [kubectl]}, identity: {serviceAccount: shared/reader, groups: [sre]}}
    - {name: b, platform: c, bindings: {executors: [pods]}, identity: {serviceAccount: shared/runner}}
  executors: [{type: kubectl}, {name: pods, type: kubectl, isolation: pod}]
  sources: [{name: s, type: kubernetes, kubernetes: {resources: [{type: v1/pods}]}}]
`)}
	for name, file := range examples(t) {
		vals[name] = readValues(t, file)
	}
	clusterScoped := map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true}
	for name, v := range vals {
		t.Run(name, func(t *testing.T) {
			seen := map[string]string{}
			var wide int
			for _, ns := range []string{"team-a", "team-b"} {
				objs, err := renderIn(t, "kubechat", ns, v)
				require.NoError(t, err)
				for _, o := range objs {
					namespace := o.GetNamespace()
					if clusterScoped[o.GetKind()] {
						wide++
						require.Contains(t, o.GetName(), ns, "a cluster-scoped name names the release's namespace")
					} else if namespace == "" {
						namespace = ns
					}
					key := o.GetKind() + " " + namespace + "/" + o.GetName()
					require.NotContains(t, seen, key, "rendered in %s and in %s", seen[key], ns)
					seen[key] = ns
				}
			}
			if name == "shared" {
				require.Equal(t, 8, wide, "watch and impersonate, each a ClusterRole and its binding, twice")
				require.Contains(t, seen, "Role shared/kubechat-team-a-impersonate")
				require.Contains(t, seen, "Role shared/kubechat-team-b-command-pods")
			}
		})
	}
}

func TestIngressRoutesOnlyCallbacks(t *testing.T) {
	objs := mustRender(t, readValues(t, "../configs/chart/teams.yaml"))
	ing := find(t, objs, "Ingress", "kubechat")
	paths, _, _ := unstructured.NestedSlice(ing.Object, "spec", "rules")
	http := paths[0].(map[string]any)["http"].(map[string]any)["paths"].([]any)
	require.Len(t, http, 1)
	require.Equal(t, "/teams/ops-teams/api/messages", http[0].(map[string]any)["path"])
	require.Equal(t, "Exact", http[0].(map[string]any)["pathType"])

	_, err := render(t, valuesOf(t, "ingress:\n  enabled: true\n"))
	require.ErrorContains(t, err, "no teams, mattermost or webchat platform in config.platforms (nor an alertmanager source) needs an Ingress")

	// An Alertmanager outside the cluster posts through the Ingress too.
	objs = mustRender(t, valuesOf(t, "ingress:\n  enabled: true\nconfig:\n  cluster: {name: prod}\n  sources:\n"+
		"    - name: prometheus\n      type: alertmanager\n      alertmanager: {bearerToken: \"${AM_TOKEN}\"}\n"))
	ing = find(t, objs, "Ingress", "kubechat")
	paths, _, _ = unstructured.NestedSlice(ing.Object, "spec", "rules")
	http = paths[0].(map[string]any)["http"].(map[string]any)["paths"].([]any)
	require.Len(t, http, 1)
	require.Equal(t, "/alertmanager/prometheus", http[0].(map[string]any)["path"])
	require.Equal(t, "Exact", http[0].(map[string]any)["pathType"])
}

func TestSchemaRejectsBadValues(t *testing.T) {
	for values, msg := range map[string]string{
		"replicaCount: two":                             "replicaCount",
		"image: {repository: x, pullPolicy: Sometimes}": "pullPolicy",
		"replicas: 2":                                   "replicas",
		"config: {cluster: {name: \"\"}}":               "name",
		"config: {cluster: {name: x}, channels: [{name: a, platform: p, identity: {serviceAccount: reader}}]}":          "serviceAccount",
		"config: {cluster: {name: x}, sources: [{name: s, type: kubernetes, kubernetes: {resources: [{type: pods}]}}]}": "type",
		"resources: {limits: {memory: null}}": "memory",
	} {
		_, err := render(t, valuesOf(t, values))
		require.Error(t, err, values)
		require.Contains(t, err.Error(), msg, values)
	}
}

// TestSchemaRefusesConfigMistakes: the chart's values schema holds the
// agent's config schema, so helm install and helm lint refuse a misspelt
// config key before anything reaches the cluster, naming its path.
func TestSchemaRefusesConfigMistakes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "values.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`config:
  cluster: {name: x}
  platforms: [{name: c, type: log}]
  channels:
    - name: a
      platform: c
      bindigs: {sources: [s]}
`), 0o600))
	_, err := render(t, readValues(t, file))
	require.ErrorContains(t, err, "at '/config/channels/0': additional properties 'bindigs' not allowed")

	res := lint.All(chartDir, readValues(t, file), "kubechat", true)
	require.True(t, slices.ContainsFunc(res.Messages, func(m support.Message) bool {
		return m.Severity == support.ErrorSev && strings.Contains(m.Error(), "at '/config/channels/0': additional properties 'bindigs' not allowed")
	}), "helm lint: %v", res.Messages)

	// helm install --set config.channels[0].bindigs=x
	set := map[string]any{}
	require.NoError(t, strvals.ParseInto("config.channels[0].bindigs=x", set))
	_, err = render(t, set)
	require.ErrorContains(t, err, "at '/config/channels/0': additional properties 'bindigs' not allowed")

	// Inside a platform's settings, by the platform's type.
	_, err = render(t, valuesOf(t, "config:\n  platforms: [{name: s, type: slack, settings: {botTokn: \"${SLACK_BOT_TOKEN}\"}}]\n"))
	require.ErrorContains(t, err, "at '/config/platforms/0/settings': additional properties 'botTokn' not allowed")
}

// TestServerSideDryRun sends every rendered object of every example to the
// API server with dryRun=All: the API server's own validation.
func TestServerSideDryRun(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	require.NoError(t, env.CreateNamespace(ctx, "kubechat"))
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	vals := map[string]map[string]any{"defaults": {}}
	for name, file := range examples(t) {
		vals[name] = readValues(t, file)
	}
	vals["everything"] = valuesOf(t, `config:
  cluster: {name: x}
  platforms: [{name: t, type: teams, settings: {appID: a, appPassword: "${TEAMS_APP_PASSWORD}"}}]
ingress: {enabled: true, className: nginx, tls: [{secretName: s, hosts: [kubechat.example.com]}]}
networkPolicy: {enabled: true, apiServer: {cidrs: [10.0.0.1/32]}, ingressFrom: [{kubernetes.io/metadata.name: ingress-nginx}]}
`)
	for name, v := range vals {
		for _, o := range mustRender(t, v) {
			mapping, err := mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
			require.NoError(t, err, "%s: %s", name, o.GetKind())
			ns := o.GetNamespace()
			if ns == "" && mapping.Scope.Name() == "namespace" {
				ns = "kubechat"
			}
			var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
			if mapping.Scope.Name() == "namespace" {
				// Objects in other namespaces than the release's (the
				// Applications' namespace of an argocd example) need it.
				require.NoError(t, env.CreateNamespace(ctx, ns))
				ri = dyn.Resource(mapping.Resource).Namespace(ns)
			}
			_, err = ri.Create(ctx, o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			require.NoError(t, err, "%s: %s %s", name, o.GetKind(), o.GetName())
		}
	}
}

// TestRBACForCommandPods: with pods for commands, the agent may manage
// pods and read their logs in exactly the namespaces they run in, and
// command pods run the chart's image.
func TestRBACForCommandPods(t *testing.T) {
	objs := mustRender(t, readValues(t, "../configs/chart/isolation.yaml"))
	r := rules(t, objs, "Role", "kubechat-kubechat-command-pods")
	require.Equal(t, "kubechat", find(t, objs, "Role", "kubechat-kubechat-command-pods").GetNamespace())
	require.Equal(t, []any{"pods"}, r[0]["resources"])
	require.Equal(t, []any{"create", "get", "list", "watch", "delete"}, r[0]["verbs"])
	require.Equal(t, []any{"pods/log"}, r[1]["resources"])
	require.Equal(t, []any{"get"}, r[1]["verbs"])
	find(t, objs, "RoleBinding", "kubechat-kubechat-command-pods")
	for _, o := range objs {
		require.NotContains(t, o.GetName(), "impersonate", "commands in pods run as their ServiceAccount: nothing to impersonate")
	}
	d := find(t, objs, "Deployment", "kubechat")
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	env := containers[0].(map[string]any)["env"].([]any)
	require.Contains(t, env, map[string]any{"name": "KUBECHAT_IMAGE", "value": "ghcr.io/kubechat/kubechat:" + chartAppVersion(t)})

	// Namespaces follow config: the run executor's, templates', channels' and users'.
	many := mustRender(t, valuesOf(t, `config:
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
    - {type: kubectl, isolation: pod}
    - {type: helm}
    - {type: run, settings: {namespace: jobs, templates: [{name: t, image: i, command: [x], serviceAccount: jobs/runner}]}}
`))
	var namespaces []string
	for _, o := range many {
		if o.GetKind() == "Role" && o.GetName() == "kubechat-kubechat-command-pods" {
			namespaces = append(namespaces, o.GetNamespace())
		}
	}
	require.Equal(t, []string{"jobs", "team-a", "team-b", "team-u"}, namespaces, "not team-c: its commands run in the agent")
	var impersonated []string
	for _, o := range many {
		if o.GetKind() == "Role" && o.GetName() == "kubechat-kubechat-impersonate" {
			impersonated = append(impersonated, o.GetNamespace())
		}
	}
	require.Equal(t, []string{"team-c", "team-u"}, impersonated, "only identities whose commands run in the agent (and users')")
	users, _, _ := unstructured.NestedSlice(find(t, many, "ClusterRole", "kubechat-kubechat-impersonate").Object, "rules")
	for _, r := range users {
		require.NotContains(t, r.(map[string]any)["resourceNames"], "dave", "channel d only runs templates, in pods")
	}

	none := mustRender(t, readValues(t, "../configs/chart/slack.yaml"))
	for _, o := range none {
		require.NotEqual(t, "kubechat-kubechat-command-pods", o.GetName(), "no pod rights without command pods")
	}
}

func chartAppVersion(t *testing.T) string {
	t.Helper()
	ch, err := loader.Load(chartDir)
	require.NoError(t, err)
	return ch.Metadata.AppVersion
}
