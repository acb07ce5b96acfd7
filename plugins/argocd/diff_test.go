package argocd

import (
	"strconv"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/ssa"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/kubechat/kubechat/internal/argocd"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/github"
	"github.com/kubechat/kubechat/internal/github/githubtest"
	"github.com/kubechat/kubechat/internal/gittest"
	"github.com/kubechat/kubechat/internal/prdiff/prdifftest"
	"github.com/kubechat/kubechat/internal/redact"
)

const (
	ghToken = "ghp_argocd-test-token"
	destNS  = "shop"
	// legacyToken is the value of a Secret the pull request removes: it
	// must never show in chat or on GitHub.
	legacyToken = "s3cr3t-legacy-token-value"
)

// mainFiles is the fleet on main: a Helm chart, a kustomization and a
// directory of plain manifests, one Application each.
var mainFiles = map[string]string{
	"charts/api/Chart.yaml":       "apiVersion: v2\nname: api\nversion: 0.1.0\n",
	"charts/api/values.yaml":      "replicas: 1\nimage: {repository: nginx, tag: \"1.25\"}\n",
	"charts/api/values-prod.yaml": "replicas: 2\n",
	"charts/api/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Release.Name }}}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}, tier: {{ .Values.tier }}}}
    spec: {containers: [{name: api, image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"}]}
`,
	"apps/web/kustomization.yaml": "resources: [deployment.yaml]\nimages: [{name: nginx, newTag: \"1.25\"}]\n",
	"apps/web/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
`,
	"manifests/plain/configmap.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n",
	"manifests/plain/secret.yaml":         "apiVersion: v1\nkind: Secret\nmetadata: {name: legacy-token}\nstringData: {token: " + legacyToken + "}\n",
	"manifests/plain/nested/other.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\ndata: {a: b}\n",
	"manifests/plain/nested/skip-me.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: skipped}\ndata: {a: b}\n",
	"manifests/plain/README.md":           "not a manifest\n",
}

// prFiles change a Helm value, a kustomize image and a plain manifest,
// and remove an object (the Secret).
var prFiles = map[string]string{
	"charts/api/values-prod.yaml":    "replicas: 3\n",
	"apps/web/kustomization.yaml":    "resources: [deployment.yaml]\nimages: [{name: nginx, newTag: \"1.27\"}]\n",
	"manifests/plain/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: red}\n",
	"manifests/plain/secret.yaml":    "",
}

// fleet is the repository, GitHub and the three Applications, with main
// applied to the cluster as the application controller applies it.
type fleet struct {
	git    *gittest.Server
	work   *gittest.Repo
	gh     *githubtest.Server
	main   string
	e      *Executor
	apps   dynamic.NamespaceableResourceInterface
	number int
}

func newFleet(t *testing.T) *fleet {
	apps := world(t)
	ctx := t.Context()
	require.NoError(t, env.CreateNamespace(ctx, destNS))
	f := &fleet{git: gittest.NewServer(t), gh: githubtest.New(t, ghToken), apps: apps, number: 100}
	f.git.RequireToken(ghToken)
	f.work = f.git.NewRepo(t, "acme/fleet")
	f.work.Write(mainFiles)
	f.main = f.work.Commit("main", "fleet")
	t.Setenv("KUBECHAT_TEST_GITHUB_TOKEN", ghToken)
	f.e = newExecutor(t, "diff:\n  github:\n    token: ${KUBECHAT_TEST_GITHUB_TOKEN}\n    baseURL: "+f.gh.APIURL()+"\n")
	repoURL := f.git.RepoURL("acme/fleet")
	src := func(path string, extra map[string]any) map[string]any {
		s := map[string]any{"repoURL": repoURL, "path": path, "targetRevision": "main"}
		for k, v := range extra {
			s[k] = v
		}
		return s
	}
	specs := map[string]map[string]any{
		"api": src("charts/api", map[string]any{"helm": map[string]any{"valueFiles": []any{"values-prod.yaml"},
			"parameters": []any{map[string]any{"name": "tier", "value": "backend"}}}}),
		"web":   src("apps/web", map[string]any{"kustomize": map[string]any{"namePrefix": "prod-"}}),
		"plain": src("manifests/plain", map[string]any{"directory": map[string]any{"recurse": true, "exclude": "skip-*.yaml"}}),
	}
	for name, s := range specs {
		newApp(t, apps, name, map[string]any{"project": "default", "source": s,
			"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": destNS}})
		f.applyMain(t, name)
	}
	return f
}

// applyMain applies Application name's render of main as the application
// controller does (its field manager, destination namespace and tracking
// annotation) and records the resources in its status.
func (f *fleet) applyMain(t *testing.T, name string) {
	t.Helper()
	ctx := t.Context()
	u, err := f.apps.Namespace(appNS).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	a, err := argocd.FromUnstructured(u)
	require.NoError(t, err)
	r := &run{e: f.e, cfg: executor.Impersonating(env.Config, admin, redact.NewSet()), secrets: redact.NewSet()}
	repo := github.Repo{Owner: "acme", Name: "fleet"}
	objects, kc, err := r.build(ctx, a, repo, github.PullRequest{CloneURL: f.git.RepoURL("acme/fleet")}, f.main)
	require.NoError(t, err)
	man := ssa.NewResourceManager(kc, nil, ssa.Owner{Field: fieldManager, Group: argocd.Group})
	_, err = man.ApplyAll(ctx, objects, ssa.DefaultApplyOptions())
	require.NoError(t, err)
	setStatus(t, f.apps, name, func(st map[string]any) {
		var res []any
		for _, o := range objects {
			gvk := o.GroupVersionKind()
			res = append(res, map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind,
				"namespace": o.GetNamespace(), "name": o.GetName(), "status": "Synced"})
		}
		st["resources"] = res
		st["sync"] = map[string]any{"status": "Synced", "revision": f.main}
	})
}

// openPR pushes branch with files changed from main and opens a pull request.
func (f *fleet) openPR(t *testing.T, branch string, files map[string]string) (int, string) {
	t.Helper()
	f.number++
	f.work.Checkout("main")
	f.work.Write(files)
	sha := f.work.Commit(branch, "change "+branch)
	f.work.Checkout("main")
	f.gh.SetPullRequest(githubtest.PullRequest{Owner: "acme", Repo: "fleet", Number: f.number, Title: branch,
		HeadRef: branch, HeadSHA: sha, CloneURL: f.git.RepoURL("acme/fleet")})
	return f.number, sha
}

// push adds a commit with files to branch, the head of pull request n.
func (f *fleet) push(t *testing.T, n int, branch string, files map[string]string) string {
	t.Helper()
	f.work.Checkout(branch)
	f.work.Write(files)
	sha := f.work.Commit(branch, "more")
	f.work.Checkout("main")
	f.gh.SetHead("acme", "fleet", n, sha)
	return sha
}

func objectLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "► "); ok {
			lines = append(lines, rest)
		}
	}
	return lines
}

// TestDiff runs the pull request diffs against one fleet.
func TestDiff(t *testing.T) {
	f := newFleet(t)
	t.Run("AgainstAPullRequest", func(t *testing.T) { testDiffAgainstAPullRequest(t, f) })
	t.Run("BuildErrorsAreClear", func(t *testing.T) { testDiffBuildErrors(t, f) })
	t.Run("ReportToThePullRequest", func(t *testing.T) { testReport(t, f) })
}

// testReport: what a github source's push runs. The diff at the pushed
// commit replaces the Application's comment on the pull request, Secret
// values masked, and the commit gets kubechat/diff: pending, then success
// when it builds and dry-runs, failure when it does not; an older push's
// run finishing late neither overwrites the newer comment nor speaks for
// the newer commit.
func testReport(t *testing.T, f *fleet) {
	n, first := f.openPR(t, "report-plain", map[string]string{
		"manifests/plain/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: green}\n",
		"manifests/plain/secret.yaml":    "",
	})
	ref := strconv.Itoa(n)
	res := prdifftest.Check(t, prdifftest.Report{
		GitHub: f.gh, Repo: "acme/fleet", Number: n, First: first,
		Marker:   "kubechat argocd-diff cluster=test-cluster application=argocd/plain",
		Executor: f.e,
		Request: func(sha string) executor.Request {
			return executor.Request{Args: []string{"app", "report", "plain", "--github-ref", ref, "--sha", sha},
				Identity: admin, Namespace: appNS, Caller: executor.Caller{Platform: "slack", UserName: "alice"}}
		},
		Break: func() string {
			return f.push(t, n, "report-plain", map[string]string{"manifests/plain/broken.yaml": "kind: [ConfigMap\n"})
		},
		Summary: "Application argocd/plain: 0 created, 1 configured, 1 deleted, 1 unchanged, 0 skipped",
		What:    "Application argocd/plain",
	})
	require.Equal(t, []string{"ConfigMap/shop/settings configured", "Secret/shop/legacy-token deleted"}, objectLines(res.Output), res.Output)
	require.Equal(t, []string{"app", "approve", "plain", "-n", appNS, "--github-ref", ref, "--sha", first}, res.Buttons[0].Args)
	require.Contains(t, res.Output, "+  color: green")
	for _, c := range f.gh.Comments(n) {
		require.NotContains(t, c.Body, legacyToken, "a Secret's value never reaches the pull request")
	}
}

// testDiffAgainstAPullRequest: one pull request changes a Helm value, a
// kustomize image and a plain manifest, and removes a Secret; each
// Application's diff shows exactly its part, with the removed Secret's
// value masked, here and on GitHub.
func testDiffAgainstAPullRequest(t *testing.T, f *fleet) {
	n, sha := f.openPR(t, "release", prFiles)
	ref := strconv.Itoa(n)

	// A viewer may read the Application but not dry-run its objects:
	// they are listed as skipped, with Kubernetes' reason.
	skipped := execute(t, f.e, viewer, "app", "diff", "api", "--github-ref", ref)
	require.Equal(t, 0, skipped.ExitCode, skipped.Errors)
	require.Contains(t, skipped.Output, `Deployment/shop/api skipped: forbidden: deployments.apps "api" is forbidden: User "victor" cannot patch resource "deployments"`)
	require.Contains(t, skipped.Errors, "Some objects were skipped")

	api := execute(t, f.e, admin, "app", "diff", "api", "--github-ref", ref)
	require.Equal(t, 0, api.ExitCode, api.Errors)
	require.Equal(t, []string{"Deployment/shop/api configured"}, objectLines(api.Output), api.Output)
	require.Contains(t, api.Output, "-  replicas: 2\n+  replicas: 3\n")
	require.Contains(t, api.Output, "0 created, 1 configured, 0 deleted, 0 unchanged, 0 skipped")
	require.Contains(t, api.Output, "Application argocd/api against acme/fleet#"+ref+" (release) at "+sha[:7]+", path charts/api")

	web := execute(t, f.e, admin, "app", "diff", "web", "--github-ref", "release")
	require.Equal(t, 0, web.ExitCode, web.Errors)
	require.Equal(t, []string{"Deployment/shop/prod-web configured"}, objectLines(web.Output), web.Output)
	require.Contains(t, web.Output, "-      - image: nginx:1.25\n+      - image: nginx:1.27\n")

	plain := execute(t, f.e, admin, "app", "diff", "plain", "--github-ref", f.gh.URL+"/acme/fleet/pull/"+ref)
	require.Equal(t, 0, plain.ExitCode, plain.Errors)
	require.Equal(t, []string{"ConfigMap/shop/settings configured", "Secret/shop/legacy-token deleted"}, objectLines(plain.Output), plain.Output)
	require.Contains(t, plain.Output, "-  color: blue\n+  color: red\n")
	require.Contains(t, plain.Output, "0 created, 1 configured, 1 deleted, 1 unchanged, 0 skipped", "nested/other.yaml is recursed into, skip-* excluded")
	require.NotContains(t, plain.Output, legacyToken)
	require.Contains(t, plain.Output, redact.Mask)

	// The buttons: post and approve at the diffed commit, and a link.
	require.Equal(t, []string{"app", "comment", "plain", "-n", appNS, "--github-ref", ref, "--sha", sha}, plain.Buttons[0].Args)
	require.Equal(t, []string{"app", "approve", "plain", "-n", appNS, "--github-ref", ref, "--sha", sha}, plain.Buttons[1].Args)
	require.Equal(t, f.gh.URL+"/acme/fleet/pull/"+ref, plain.Buttons[2].URL)

	post := execute(t, f.e, admin, plain.Buttons[0].Args...)
	require.Equal(t, 0, post.ExitCode, post.Errors)
	again := execute(t, f.e, admin, plain.Buttons[0].Args...)
	require.Equal(t, 0, again.ExitCode, again.Errors)
	comments := f.gh.Comments(n)
	require.Len(t, comments, 1, "one comment per pull request and Application, edited in place")
	require.Contains(t, comments[0].Body, "### Argo CD diff: Application `argocd/plain` on cluster `test-cluster`")
	require.Contains(t, comments[0].Body, "kubechat argocd-diff cluster=test-cluster application=argocd/plain")
	require.NotContains(t, comments[0].Body, legacyToken, "a Secret's value never reaches the pull request")
	execute(t, f.e, admin, api.Buttons[0].Args...)
	require.Len(t, f.gh.Comments(n), 2, "another Application, another comment")

	approve := execute(t, f.e, admin, plain.Buttons[1].Args...)
	require.Equal(t, 0, approve.ExitCode, approve.Errors)
	require.Equal(t, sha, f.gh.Reviews()[0].CommitID)
	f.push(t, n, "release", map[string]string{"charts/api/values-prod.yaml": "replicas: 4\n"})
	refused := execute(t, f.e, admin, plain.Buttons[1].Args...)
	require.Equal(t, 1, refused.ExitCode)
	require.Contains(t, refused.Errors, "Not approved")
	require.Len(t, f.gh.Reviews(), 1)

	// Without a pull request: the revision Argo CD compared against the
	// cluster, which holds exactly it.
	desired := execute(t, f.e, admin, "app", "diff", "plain")
	require.Equal(t, 0, desired.ExitCode, desired.Errors)
	require.Contains(t, desired.Output, "No resource is out of sync.")
	require.Contains(t, desired.Output, "0 created, 0 configured, 0 deleted, 3 unchanged, 0 skipped")
}

// testDiffBuildErrors: a source that escapes the checkout, pulls a
// remote base or names a remote values file is refused with a clear
// error, and the checkout's location stays out of it.
func testDiffBuildErrors(t *testing.T, f *fleet) {
	for i, tc := range []struct {
		name, app string
		files     map[string]string
		want      []string
	}{
		{"resource outside the repository", "web", map[string]string{"apps/web/kustomization.yaml": "resources: [../../../../etc]\n"},
			[]string{"build ./apps/web: a file or base lies outside the repository", "is not in or below '<repo>'"}},
		{"remote base", "web", map[string]string{"apps/web/kustomization.yaml": "resources:\n  - https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0\n"},
			[]string{"build ./apps/web: remote bases are off"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, _ := f.openPR(t, "broken-"+strconv.Itoa(i), tc.files)
			res := execute(t, f.e, admin, "app", "diff", tc.app, "--github-ref", strconv.Itoa(n))
			require.Equal(t, 1, res.ExitCode, res.Output)
			for _, want := range tc.want {
				require.Contains(t, res.Errors, want)
			}
			require.NotContains(t, res.Errors, "kubechat-argocd-")
		})
	}
	n, _ := f.openPR(t, "plain-change", map[string]string{"charts/api/values-prod.yaml": "replicas: 5\n"})
	for app, change := range map[string]func(src map[string]any){
		"path": func(src map[string]any) { src["path"] = "../../etc" },
		"values": func(src map[string]any) {
			src["helm"] = map[string]any{"valueFiles": []any{"../../../../etc/passwd"}}
		},
		"remote-values": func(src map[string]any) {
			src["helm"] = map[string]any{"valueFiles": []any{"https://example.com/values.yaml"}}
		},
		"plugin": func(src map[string]any) { src["plugin"] = map[string]any{"name": "x"} },
		"kustomize-patches": func(src map[string]any) {
			src["path"] = "apps/web"
			src["kustomize"] = map[string]any{"replicas": []any{map[string]any{"name": "web", "count": int64(3)}}}
		},
	} {
		name := "bad-" + app
		s := map[string]any{"repoURL": f.git.RepoURL("acme/fleet"), "path": "charts/api", "targetRevision": "main"}
		change(s)
		newApp(t, f.apps, name, map[string]any{"project": "default", "source": s,
			"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": destNS}})
		res := execute(t, f.e, admin, "app", "diff", name, "--github-ref", strconv.Itoa(n))
		require.Equal(t, 1, res.ExitCode, "%s: %s", app, res.Output)
		want := map[string]string{
			"path":              `source.path "../../etc": must be a path inside the repository`,
			"values":            `source.helm.valueFiles "../../../../etc/passwd": leads outside the repository`,
			"remote-values":     `source.helm.valueFiles "https://example.com/values.yaml": a remote file is not in the pull request`,
			"plugin":            "source.plugin: config management plugins run programs, which kubechat does not",
			"kustomize-patches": "source.kustomize.replicas: not applied by kubechat's diff",
		}[app]
		require.Contains(t, res.Errors, want, app)
	}
	multi := map[string]any{"project": "default", "sources": []any{
		map[string]any{"repoURL": f.git.RepoURL("acme/fleet"), "path": "charts/api", "targetRevision": "main"},
		map[string]any{"repoURL": f.git.RepoURL("acme/fleet"), "path": "apps/web", "targetRevision": "main"},
	}, "destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": destNS}}
	newApp(t, f.apps, "multi", multi)
	res := execute(t, f.e, admin, "app", "diff", "multi", "--github-ref", strconv.Itoa(n))
	require.Equal(t, "Error: application argocd/multi has several sources (spec.sources); kubechat diffs single-source applications against a pull request\n", res.Errors)
}
