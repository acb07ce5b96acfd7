package flux

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/ssa"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/github"
	"github.com/kubechat/kubechat/internal/github/githubtest"
	"github.com/kubechat/kubechat/internal/gittest"
	"github.com/kubechat/kubechat/internal/redact"
	"github.com/kubechat/kubechat/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Nodes: 1}) }

const (
	appNS   = "flux-apps"
	fluxNS  = "flux-src"
	ghToken = "ghp_test-token-for-the-fake"
	// dbPassword comes from a Secret through postBuild.substituteFrom: it
	// must never show in chat or on GitHub.
	dbPassword = "hunter2-s3cr3t-from-a-secret"
	owner      = "acme"
	repoName   = "fleet"
)

// admin may do everything (impersonated system:masters).
var admin = executor.Identity{User: "flux-admin", Groups: []string{"system:masters"}}

// fixture is the shared world: a git server with the fleet repository, a
// fake GitHub, and a Kustomization applied from main.
type fixture struct {
	git     *gittest.Server
	repo    *gittest.Repo
	gh      *githubtest.Server
	mainSHA string
}

const kustomizationMain = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deployment.yaml, service.yaml, serviceaccount.yaml]
`

func deployment(replicas int, image string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {env: "${ENV}"}
spec:
  replicas: ` + strconv.Itoa(replicas) + `
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: ` + image + `
`
}

const service = `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`

const serviceAccount = `apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
`

const configMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data:
  mode: "${ENV}"
  databasePassword: "${DB_PASSWORD}"
`

// prFiles are the pull request's changes: replicas and image, a new
// ConfigMap, and the Service removed.
var prFiles = map[string]string{
	"deploy/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml, configmap.yaml, serviceaccount.yaml]\n",
	"deploy/deployment.yaml":    deployment(3, "nginx:1.27"),
	"deploy/configmap.yaml":     configMap,
	"deploy/service.yaml":       "",
}

// TestFlux runs every scenario against one fixture.
func TestFlux(t *testing.T) {
	testenv.Skip(t, env)
	f := setup(t)
	t.Run("DiffShowsExactlyThePullRequestsChanges", func(t *testing.T) { testDiff(t, f) })
	t.Run("CommentAndApprove", func(t *testing.T) { testCommentAndApprove(t, f) })
	t.Run("BuildErrorsAreClear", func(t *testing.T) { testBuildErrors(t, f) })
	t.Run("ObjectsTheIdentityMayNotDryRunAreSkipped", func(t *testing.T) { testSkipped(t, f) })
	t.Run("Get", func(t *testing.T) { testGet(t, f) })
}

func setup(t *testing.T) *fixture {
	t.Helper()
	var fix fixture
	{
		ctx := t.Context()
		dir, err := testenv.FluxCRDDir()
		require.NoError(t, err)
		require.NoError(t, env.InstallCRDs(ctx, dir), "the Flux CRDs come from make testbin")
		for _, n := range []string{appNS, fluxNS} {
			require.NoError(t, env.CreateNamespace(ctx, n))
		}
		fix.git = gittest.NewServer(t)
		fix.gh = githubtest.New(t, ghToken)
		fix.repo = fix.git.NewRepo(t, "fleet")
		fix.repo.Write(map[string]string{
			"deploy/kustomization.yaml":  kustomizationMain,
			"deploy/deployment.yaml":     deployment(1, "nginx:1.25"),
			"deploy/service.yaml":        service,
			"deploy/serviceaccount.yaml": serviceAccount,
		})
		fix.mainSHA = fix.repo.Commit("main", "fleet: web")

		kc, err := client.New(env.Config, client.Options{Scheme: scheme})
		require.NoError(t, err)
		require.NoError(t, kc.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "cluster-vars", Namespace: fluxNS},
			StringData: map[string]string{"DB_PASSWORD": dbPassword},
		}))
		require.NoError(t, kc.Create(ctx, &sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Name: "fleet", Namespace: fluxNS},
			Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/acme/fleet.git", Interval: metav1.Duration{Duration: time.Minute},
				Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
		}))
		ks := &kustomizev1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: fluxNS},
			Spec: kustomizev1.KustomizationSpec{
				Interval: metav1.Duration{Duration: time.Minute}, Path: "./deploy", Prune: true, TargetNamespace: appNS,
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "fleet"},
				PostBuild: &kustomizev1.PostBuild{
					Substitute:     map[string]string{"ENV": "prod"},
					SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "Secret", Name: "cluster-vars"}},
				},
			},
		}
		require.NoError(t, kc.Create(ctx, ks))

		// Apply main as kustomize-controller would, and record its
		// inventory: the cluster the pull request is diffed against.
		e := newExecutor(t, "")
		r := &run{e: e, cfg: env.Config, secrets: redact.NewSet(), cmd: command{name: "apps", namespace: fluxNS}}
		tg, err := r.resolve(ctx)
		require.NoError(t, err)
		objects, err := r.build(ctx, tg, github.PullRequest{CloneURL: fix.git.RepoURL("fleet")}, fix.mainSHA, "./deploy")
		require.NoError(t, err)
		man := ssa.NewResourceManager(kc, nil, ssa.Owner{Field: fieldManager, Group: fluxGroup})
		man.SetOwnerLabels(objects, "apps", fluxNS)
		_, err = man.ApplyAll(ctx, objects, ssa.DefaultApplyOptions())
		require.NoError(t, err)
		inv := &kustomizev1.ResourceInventory{}
		for _, o := range objects {
			inv.Entries = append(inv.Entries, kustomizev1.ResourceRef{ID: object.UnstructuredToObjMetadata(o).String(), Version: o.GroupVersionKind().Version})
		}
		require.NoError(t, kc.Get(ctx, client.ObjectKeyFromObject(ks), ks))
		ks.Status.Inventory = inv
		ks.Status.LastAppliedRevision = "main@sha1:" + fix.mainSHA
		ks.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: "ReconciliationSucceeded",
			Message: "Applied revision: main@sha1:" + fix.mainSHA, LastTransitionTime: metav1.Now()}}
		require.NoError(t, kc.Status().Update(ctx, ks))
	}
	return &fix
}

// pullRequest opens pull request number from branch with files changed
// from main and returns its head commit.
func (f *fixture) pullRequest(t *testing.T, number int, branch string, files map[string]string) string {
	t.Helper()
	f.repo.Checkout("main")
	f.repo.Write(files)
	sha := f.repo.Commit(branch, "change "+branch)
	f.repo.Checkout("main")
	f.gh.SetPullRequest(githubtest.PullRequest{Owner: owner, Repo: repoName, Number: number, Title: branch,
		HeadRef: branch, HeadSHA: sha, CloneURL: f.git.RepoURL("fleet")})
	return sha
}

func newExecutor(t *testing.T, apiURL string) *Executor {
	t.Helper()
	t.Setenv("KUBECHAT_TEST_GITHUB_TOKEN", ghToken)
	settings := "github:\n  token: ${KUBECHAT_TEST_GITHUB_TOKEN}\n"
	if apiURL != "" {
		settings += "  baseURL: " + apiURL + "\n"
	}
	raw, err := config.RawFromYAML(settings)
	require.NoError(t, err)
	e, err := New("flux", raw, executor.Deps{RESTConfig: env.Config, Cluster: "test-cluster"})
	require.NoError(t, err)
	return e.(*Executor)
}

func execute(t *testing.T, e *Executor, id executor.Identity, args ...string) executor.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	res, err := e.Execute(ctx, executor.Request{Args: args, Identity: id, Namespace: fluxNS,
		Caller: executor.Caller{Platform: "slack", UserName: "alice"}})
	require.NoError(t, err)
	return res
}

// objectLines are the report's "► Object action" lines.
func objectLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "► ") {
			lines = append(lines, strings.TrimPrefix(l, "► "))
		}
	}
	return lines
}

func testDiff(t *testing.T, f *fixture) {
	sha := f.pullRequest(t, 7, "scale-web", prFiles)
	e := newExecutor(t, f.gh.APIURL())
	res := execute(t, e, admin, "diff", "kustomization", "apps", "--github-ref", "7")
	require.Equal(t, 0, res.ExitCode, res.Errors)
	out := res.Output
	require.Equal(t, []string{
		"ConfigMap/flux-apps/settings created",
		"Deployment/flux-apps/web configured",
		"Service/flux-apps/web deleted",
	}, objectLines(out), out)
	require.Contains(t, out, "1 created, 1 configured, 1 deleted, 1 unchanged, 0 skipped")
	require.Contains(t, out, "-  replicas: 1\n+  replicas: 3\n")
	require.Contains(t, out, "-      - image: nginx:1.25\n+      - image: nginx:1.27\n")
	require.Contains(t, out, "+  mode: prod\n", "postBuild.substitute is applied")
	require.Contains(t, out, "+  databasePassword: "+redact.Mask+"\n", "the substituteFrom Secret value is masked")
	require.NotContains(t, out, dbPassword)
	require.Contains(t, out, "-  name: web\n", "the deleted Service's manifest")
	require.Contains(t, out, sha[:7])

	// The buttons: post, approve (both carrying the diffed commit) and a link.
	require.Len(t, res.Buttons, 3)
	require.Equal(t, []string{"comment", "kustomization", "apps", "-n", fluxNS, "--github-ref", "7", "--sha", sha}, res.Buttons[0].Args)
	require.Equal(t, []string{"approve", "kustomization", "apps", "-n", fluxNS, "--github-ref", "7", "--sha", sha}, res.Buttons[1].Args)
	require.Equal(t, f.gh.URL+"/acme/fleet/pull/7", res.Buttons[2].URL)

	// By branch and by URL, the same pull request.
	byBranch := execute(t, e, admin, "diff", "ks", "apps", "-n", fluxNS, "--github-ref", "scale-web")
	require.Equal(t, objectLines(out), objectLines(byBranch.Output))
	byURL := execute(t, e, admin, "diff", "ks", "apps", "--github-ref", f.gh.URL+"/acme/fleet/pull/7")
	require.Equal(t, objectLines(out), objectLines(byURL.Output))
}

func testCommentAndApprove(t *testing.T, f *fixture) {
	sha := f.pullRequest(t, 8, "scale-web-2", prFiles)
	// Other people's comments fill the first pages.
	for i := range 2*githubtest.PerPage + 1 {
		f.gh.AddComment(8, "looks good "+strconv.Itoa(i))
	}
	e := newExecutor(t, f.gh.APIURL())
	diff := execute(t, e, admin, "diff", "kustomization", "apps", "--github-ref", "8")
	require.Equal(t, 0, diff.ExitCode, diff.Errors)

	post := execute(t, e, admin, diff.Buttons[0].Args...)
	require.Equal(t, 0, post.ExitCode, post.Errors)
	require.Contains(t, post.Output, "Posted the diff")
	ours := func() []githubtest.Comment {
		var out []githubtest.Comment
		for _, c := range f.gh.Comments(8) {
			if strings.Contains(c.Body, "<!-- kubechat flux-diff cluster=test-cluster kustomization=flux-src/apps part ") {
				out = append(out, c)
			}
		}
		return out
	}
	require.Len(t, ours(), 1)
	body := ours()[0].Body
	require.Contains(t, body, "```diff\n")
	require.Contains(t, body, "+  replicas: 3")
	require.Contains(t, body, "`Service/flux-apps/web` deleted")
	require.Contains(t, body, sha)
	require.NotContains(t, body, dbPassword, "a substituteFrom Secret value never reaches the pull request")

	// Posting again, past the first pages, edits the same comment.
	again := execute(t, e, admin, diff.Buttons[0].Args...)
	require.Equal(t, 0, again.ExitCode, again.Errors)
	require.Len(t, ours(), 1)
	require.Len(t, f.gh.Comments(8), 2*githubtest.PerPage+2)

	approve := execute(t, e, admin, diff.Buttons[1].Args...)
	require.Equal(t, 0, approve.ExitCode, approve.Errors)
	require.Equal(t, []githubtest.Review{{Number: 8, CommitID: sha, Event: "APPROVE",
		Body: "Approved from chat by alice (slack) through kubechat, after the diff of Kustomization flux-src/apps on cluster test-cluster at " + sha + "."}},
		f.gh.Reviews())

	// A push after the diff: Approve refuses and offers to diff again.
	f.repo.Checkout("scale-web-2")
	f.repo.Write(map[string]string{"deploy/deployment.yaml": deployment(5, "nginx:1.27")})
	newSHA := f.repo.Commit("scale-web-2", "more replicas")
	f.repo.Checkout("main")
	f.gh.SetHead(owner, repoName, 8, newSHA)
	refused := execute(t, e, admin, diff.Buttons[1].Args...)
	require.Equal(t, 1, refused.ExitCode)
	require.Contains(t, refused.Errors, "Not approved")
	require.Contains(t, refused.Errors, newSHA[:12])
	require.Len(t, f.gh.Reviews(), 1, "no review for a moved head")
	require.Equal(t, "Diff again", refused.Buttons[0].Label)
	rediff := execute(t, e, admin, refused.Buttons[0].Args...)
	require.Contains(t, rediff.Output, "+  replicas: 5")
	require.Contains(t, rediff.Output, newSHA[:7])
}

func testBuildErrors(t *testing.T, f *fixture) {
	e := newExecutor(t, f.gh.APIURL())
	cases := []struct {
		name   string
		files  map[string]string
		args   []string
		errors []string
	}{{
		name:   "resource outside the repository",
		files:  map[string]string{"deploy/kustomization.yaml": "resources: [../../../../etc]\n"},
		errors: []string{"build ./deploy: a file or base lies outside the repository", "'/etc' is not in or below '<repo>'"},
	}, {
		name:   "remote base",
		files:  map[string]string{"deploy/kustomization.yaml": "resources:\n  - https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0\n"},
		errors: []string{"build ./deploy: remote bases are off", "github.com/kubernetes-sigs/kustomize"},
	}, {
		name:   "path outside the repository",
		files:  map[string]string{"deploy/extra.yaml": "kind: ConfigMap\n"},
		args:   []string{"--path", "../../.."},
		errors: []string{`--path "../../..": must be a path inside the repository`},
	}}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := 20 + i
			f.pullRequest(t, n, "broken-"+strconv.Itoa(i), tc.files)
			res := execute(t, e, admin, append([]string{"diff", "kustomization", "apps", "--github-ref", strconv.Itoa(n)}, tc.args...)...)
			require.Equal(t, 1, res.ExitCode, res.Output)
			for _, want := range tc.errors {
				require.Contains(t, res.Errors, want)
			}
			require.NotContains(t, res.Errors, "kubechat-flux-", "the temporary checkout's path stays out of the error")
		})
	}
}

func testSkipped(t *testing.T, f *fixture) {
	f.pullRequest(t, 9, "scale-web-3", prFiles)
	ctx := t.Context()
	// The reviewer may read everything and change Deployments and Services, but not ConfigMaps.
	_, err := env.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "flux-reviewer"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"patch"}},
			{APIGroups: []string{""}, Resources: []string{"services", "serviceaccounts"}, Verbs: []string{"patch"}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, env.BindGroupToClusterRole(ctx, "flux-reviewers", "flux-reviewer"))
	reviewer := executor.Identity{User: "rita", Groups: []string{"flux-reviewers"}}

	res := execute(t, newExecutor(t, f.gh.APIURL()), reviewer, "diff", "kustomization", "apps", "--github-ref", "9")
	require.Equal(t, 0, res.ExitCode, res.Errors)
	lines := objectLines(res.Output)
	require.Len(t, lines, 3, res.Output)
	require.Contains(t, lines[0], "ConfigMap/flux-apps/settings skipped: forbidden: ")
	require.Contains(t, lines[0], `User "rita" cannot patch resource "configmaps"`)
	require.Equal(t, "Deployment/flux-apps/web configured", lines[1])
	require.Equal(t, "Service/flux-apps/web deleted", lines[2])
	require.NotContains(t, res.Output, dbPassword)

	// Without the right to read the Kustomization, nothing runs.
	nobody := executor.Identity{User: "nobody"}
	denied := execute(t, newExecutor(t, f.gh.APIURL()), nobody, "diff", "kustomization", "apps", "--github-ref", "9")
	require.True(t, denied.Forbidden, denied.Errors)
}

func testGet(t *testing.T, f *fixture) {
	e := newExecutor(t, f.gh.APIURL())
	res := execute(t, e, admin, "get", "kustomizations")
	require.Equal(t, 0, res.ExitCode, res.Errors)
	lines := strings.Split(strings.TrimSpace(res.Output), "\n")
	require.Len(t, lines, 2, res.Output)
	require.Equal(t, []string{"NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"apps", "main@sha1:" + f.mainSHA, "False", "True", "Applied", "revision:", "main@sha1:" + f.mainSHA}, strings.Fields(lines[1]))

	all := execute(t, e, admin, "get", "sources", "git", "-A")
	require.Equal(t, 0, all.ExitCode, all.Errors)
	lines = strings.Split(strings.TrimSpace(all.Output), "\n")
	require.Len(t, lines, 2, all.Output)
	require.Equal(t, []string{"NAMESPACE", "NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"}, strings.Fields(lines[0]))
	require.Equal(t, []string{fluxNS, "fleet", "False", "Unknown", "waiting", "to", "be", "reconciled"}, strings.Fields(lines[1]))

	none := execute(t, e, admin, "get", "ks", "-n", "default")
	require.Equal(t, "no kustomizations found in default namespace\n", none.Errors)
}

func TestParseErrorsNameTheBadWord(t *testing.T) {
	e := &Executor{}
	for args, want := range map[string]string{
		"diff kustomization apps":                     "--github-ref is required",
		"diff helmrelease apps --github-ref 1":        `only "kustomization NAME" can be diffed`,
		"approve kustomization apps --github-ref 1":   "--sha is required",
		"approve ks apps --github-ref 1 --sha abc":    `--sha "abc": not a full commit id`,
		"reconcile ks apps":                           `"reconcile" is not a flux command`,
		"get helmreleases":                            `flux get "helmreleases"`,
		"diff ks apps -A --github-ref 1":              "-A is for get",
		"diff ks apps --github-ref 1 --kubeconfig /x": "unknown flag: --kubeconfig",
	} {
		_, err := e.Analyze(strings.Fields(args))
		require.ErrorContains(t, err, want, args)
	}
	a, err := e.Analyze([]string{"approve", "ks", "apps", "-n", "x", "--github-ref", "1", "--sha", strings.Repeat("a", 40)})
	require.NoError(t, err)
	require.Equal(t, executor.Action{Verb: "approve", Resource: "kustomizations", Namespace: "x"}, a)
	require.ElementsMatch(t, []string{"diff", "get kustomizations", "get sources git"}, e.ReadOnlyVerbs())
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	t.Setenv("KUBECHAT_TEST_KEY", "not a key")
	for settings, want := range map[string]string{
		"github:\n  app:\n    id: 0\n    installationID: 1\n    privateKey: ${KUBECHAT_TEST_KEY}\n": "settings.github.app.id",
		"github:\n  app:\n    id: 1\n    installationID: 1\n    privateKey: ${KUBECHAT_TEST_KEY}\n": "settings.github.app.privateKey",
		"github: {baseURL: 'ftp://x'}": "settings.github.baseURL",
		"maxRepoBytes: -1":             "settings.maxRepoBytes",
		"github: {tokn: x}":            "tokn",
	} {
		raw, err := config.RawFromYAML(settings)
		require.NoError(t, err)
		_, err = New("flux", raw, executor.Deps{})
		require.ErrorContains(t, err, want, settings)
	}
}
