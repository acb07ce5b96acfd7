package flux

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/github/githubtest"
	"github.com/kubechat/kubechat/internal/prdiff"
	"github.com/kubechat/kubechat/internal/prdiff/prdifftest"
	"github.com/kubechat/kubechat/internal/redact"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/flux/fluxtest"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Nodes: 1}) }

const (
	appNS  = "flux-apps"
	fluxNS = "flux-src"
)

// admin may do everything (impersonated system:masters).
var admin = executor.Identity{User: "flux-admin", Groups: []string{"system:masters"}}

// TestFlux runs every scenario against one fleet.
func TestFlux(t *testing.T) {
	testenv.Skip(t, env)
	f := fluxtest.New(t, env, appNS, fluxNS)
	t.Run("DiffShowsExactlyThePullRequestsChanges", func(t *testing.T) { testDiff(t, f) })
	t.Run("CommentAndApprove", func(t *testing.T) { testCommentAndApprove(t, f) })
	t.Run("ReportSetsTheCommitStatusAndANewerPushWins", func(t *testing.T) { testReport(t, f) })
	t.Run("BuildErrorsAreClear", func(t *testing.T) { testBuildErrors(t, f) })
	t.Run("ObjectsTheIdentityMayNotDryRunAreSkipped", func(t *testing.T) { testSkipped(t, f) })
	t.Run("Get", func(t *testing.T) { testGet(t, f) })
	t.Run("ObjectsInANewNamespace", func(t *testing.T) { testNewNamespace(t, f) })
	t.Run("MatchesTheFluxCLI", func(t *testing.T) { testMatchesFluxCLI(t, f) })
	t.Run("SizeLimits", func(t *testing.T) { testSizeLimits(t, f) })
	// Last: it moves the Kustomization's status.
	t.Run("FollowUntilReadyAtTheCommit", func(t *testing.T) { testFollow(t, f) })
	t.Run("PrivateRepositoryNeedsTheToken", func(t *testing.T) {
		for _, tok := range []string{"", "wrong"} {
			err := prdiff.Checkout(t.Context(), f.Git.RepoURL(fluxtest.Repo), f.MainSHA, filepath.Join(t.TempDir(), "repo"), tok, 1<<20)
			require.ErrorContains(t, err, "authentication required", "token %q", tok)
		}
		require.NoError(t, prdiff.Checkout(t.Context(), f.Git.RepoURL(fluxtest.Repo), f.MainSHA, filepath.Join(t.TempDir(), "repo"), fluxtest.GitHubToken, 1<<20))
	})
}

// testSizeLimits: a repository or a build past the configured size is a
// clear error, and the temporary checkout is gone afterwards.
func testSizeLimits(t *testing.T, f *fluxtest.Fleet) {
	f.OpenPR(t, 60, "limits", fluxtest.PRFiles())
	work := t.TempDir()
	for _, tc := range []struct{ setting, want string }{
		{"maxRepoBytes: 2000", "larger than the limit of 2000 bytes (settings.maxRepoBytes)"},
		{"maxManifestBytes: 300", "past the limit of 300 (settings.maxManifestBytes)"},
	} {
		e := newExecutor(t, f.GitHub.APIURL(), tc.setting, "workDir: "+work)
		res := execute(t, e, admin, "diff", "kustomization", "apps", "--github-ref", "60")
		require.Equal(t, 1, res.ExitCode, res.Output)
		require.Contains(t, res.Errors, tc.want)
		left, err := os.ReadDir(work)
		require.NoError(t, err)
		require.Empty(t, left, "the checkout is removed")
	}
}

// testMatchesFluxCLI: for the same pull request, the objects and their
// outcomes are those "flux diff kustomization" of the flux CLI (built by
// make testbin) reports for a local checkout of the same commit.
func testMatchesFluxCLI(t *testing.T, f *fluxtest.Fleet) {
	bin, err := testenv.BinDir()
	require.NoError(t, err)
	flux := filepath.Join(bin, "flux")
	_, err = os.Stat(flux)
	require.NoError(t, err, "the flux CLI comes from make testbin")

	f.OpenPR(t, 50, "compare", fluxtest.PRFiles())
	res := execute(t, newExecutor(t, f.GitHub.APIURL()), admin, "diff", "kustomization", "apps", "--github-ref", "50")
	require.Equal(t, 0, res.ExitCode, res.Errors)
	ours := objectLines(res.Output)

	f.Work.Checkout("compare")
	defer f.Work.Checkout("main")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, flux, "diff", "kustomization", "apps", "-n", fluxNS, "--path", filepath.Join(f.Work.Dir, "deploy"),
		"--progress-bar=false", "--kubeconfig", env.Kubeconfig())
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, "flux diff exits 1 when something changes:\n%s", out)
	var theirs []string
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "► "); ok {
			theirs = append(theirs, strings.Replace(rest, " drifted", " configured", 1))
		}
	}
	slices.Sort(theirs)
	require.Equal(t, ours, theirs, "flux diff printed:\n%s", out)
}

// testNewNamespace: objects in a namespace the same pull request creates
// are created with it, not an error (the dry-run finds no namespace).
func testNewNamespace(t *testing.T, f *fluxtest.Fleet) {
	ctx := t.Context()
	kc, err := client.New(env.Config, client.Options{Scheme: scheme})
	require.NoError(t, err)
	require.NoError(t, kc.Create(ctx, &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: "extras", Namespace: fluxNS},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Minute}, Path: "./extras",
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: fluxtest.Repo}},
	}))
	f.OpenPR(t, 40, "extras", map[string]string{
		"extras/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: flux-new}\n",
		"extras/config.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: flux-new}\ndata: {a: b}\n",
	})
	res := execute(t, newExecutor(t, f.GitHub.APIURL()), admin, "diff", "kustomization", "extras", "--github-ref", "40")
	require.Equal(t, 0, res.ExitCode, res.Errors)
	require.Equal(t, []string{"ConfigMap/flux-new/cm created", "Namespace/flux-new created"}, objectLines(res.Output))
	require.Contains(t, res.Output, "+  a: b\n")
}

func newExecutor(t *testing.T, apiURL string, extra ...string) *Executor {
	t.Helper()
	t.Setenv("KUBECHAT_TEST_GITHUB_TOKEN", fluxtest.GitHubToken)
	settings := "github:\n  token: ${KUBECHAT_TEST_GITHUB_TOKEN}\n"
	if apiURL != "" {
		settings += "  baseURL: " + apiURL + "\n"
	}
	for _, line := range extra {
		settings += line + "\n"
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

func testDiff(t *testing.T, f *fluxtest.Fleet) {
	sha := f.OpenPR(t, 7, "scale-web", fluxtest.PRFiles())
	e := newExecutor(t, f.GitHub.APIURL())
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
	require.NotContains(t, out, fluxtest.DBPassword)
	require.Contains(t, out, "-  name: web\n", "the deleted Service's manifest")
	require.Contains(t, out, sha[:7])

	// The buttons: post, approve (both carrying the diffed commit) and a link.
	require.Len(t, res.Buttons, 3)
	require.Equal(t, []string{"comment", "kustomization", "apps", "-n", fluxNS, "--github-ref", "7", "--sha", sha}, res.Buttons[0].Args)
	require.Equal(t, []string{"approve", "kustomization", "apps", "-n", fluxNS, "--github-ref", "7", "--sha", sha}, res.Buttons[1].Args)
	require.Equal(t, f.GitHub.URL+"/acme/fleet/pull/7", res.Buttons[2].URL)

	// By branch and by URL, the same pull request.
	byBranch := execute(t, e, admin, "diff", "ks", "apps", "-n", fluxNS, "--github-ref", "scale-web")
	require.Equal(t, objectLines(out), objectLines(byBranch.Output))
	byURL := execute(t, e, admin, "diff", "ks", "apps", "--github-ref", f.GitHub.URL+"/acme/fleet/pull/7")
	require.Equal(t, objectLines(out), objectLines(byURL.Output))
}

func testCommentAndApprove(t *testing.T, f *fluxtest.Fleet) {
	sha := f.OpenPR(t, 8, "scale-web-2", fluxtest.PRFiles())
	// Other people's comments fill the first pages.
	for i := range 2*githubtest.PerPage + 1 {
		f.GitHub.AddComment(8, "looks good "+strconv.Itoa(i))
	}
	e := newExecutor(t, f.GitHub.APIURL())
	diff := execute(t, e, admin, "diff", "kustomization", "apps", "--github-ref", "8")
	require.Equal(t, 0, diff.ExitCode, diff.Errors)

	post := execute(t, e, admin, diff.Buttons[0].Args...)
	require.Equal(t, 0, post.ExitCode, post.Errors)
	require.Contains(t, post.Output, "Posted the diff")
	ours := func() []githubtest.Comment {
		return f.GitHub.CommentsWith(8, "<!-- kubechat flux-diff cluster=test-cluster kustomization=flux-src/apps part ")
	}
	require.Len(t, ours(), 1)
	body := ours()[0].Body
	require.Contains(t, body, "```diff\n")
	require.Contains(t, body, "+  replicas: 3")
	require.Contains(t, body, "`Service/flux-apps/web` deleted")
	require.Contains(t, body, sha)
	require.NotContains(t, body, fluxtest.DBPassword, "a substituteFrom Secret value never reaches the pull request")

	// Posting again, past the first pages, edits the same comment.
	again := execute(t, e, admin, diff.Buttons[0].Args...)
	require.Equal(t, 0, again.ExitCode, again.Errors)
	require.Len(t, ours(), 1)
	require.Len(t, f.GitHub.Comments(8), 2*githubtest.PerPage+2)

	approve := execute(t, e, admin, diff.Buttons[1].Args...)
	require.Equal(t, 0, approve.ExitCode, approve.Errors)
	require.Equal(t, []githubtest.Review{{Number: 8, CommitID: sha, Event: "APPROVE",
		Body: "Approved from chat by alice (slack) through kubechat, after the diff of Kustomization flux-src/apps on cluster test-cluster at " + sha + "."}},
		f.GitHub.Reviews())

	// A push after the diff: Approve refuses and offers to diff again.
	newSHA := f.Push(t, 8, "scale-web-2", map[string]string{"deploy/deployment.yaml": fluxtest.Deployment(5, "nginx:1.27")})
	refused := execute(t, e, admin, diff.Buttons[1].Args...)
	require.Equal(t, 1, refused.ExitCode)
	require.Contains(t, refused.Errors, "Not approved")
	require.Contains(t, refused.Errors, newSHA[:12])
	require.Len(t, f.GitHub.Reviews(), 1, "no review for a moved head")
	require.Equal(t, "Diff again", refused.Buttons[0].Label)
	rediff := execute(t, e, admin, refused.Buttons[0].Args...)
	require.Contains(t, rediff.Output, "+  replicas: 5")
	require.Contains(t, rediff.Output, newSHA[:7])
}

func testReport(t *testing.T, f *fluxtest.Fleet) {
	const n = 40
	first := f.OpenPR(t, n, "report-web", fluxtest.PRFiles())
	e := newExecutor(t, f.GitHub.APIURL())
	marker := "<!-- kubechat flux-diff cluster=test-cluster kustomization=flux-src/apps part "
	res := prdifftest.Check(t, prdifftest.Report{
		GitHub: f.GitHub, Repo: "acme/fleet", Number: n, First: first, Marker: marker,
		Executor: e,
		Request: func(sha string) executor.Request {
			return executor.Request{Args: []string{"report", "kustomization", "apps", "--github-ref", strconv.Itoa(n), "--sha", sha},
				Identity: admin, Namespace: fluxNS, Caller: executor.Caller{Platform: "slack", UserName: "alice"}}
		},
		Break: func() string {
			return f.Push(t, n, "report-web", map[string]string{"deploy/kustomization.yaml": "resources: [missing.yaml]\n"})
		},
		Summary: "Kustomization flux-src/apps: 1 created, 1 configured, 1 deleted, 1 unchanged, 0 skipped",
		What:    "Kustomization flux-src/apps",
	})
	require.Contains(t, res.Output, "1 created, 1 configured, 1 deleted")
	for _, c := range f.GitHub.CommentsWith(n, marker) {
		require.NotContains(t, c.Body, fluxtest.DBPassword)
	}
}

func testFollow(t *testing.T, f *fluxtest.Fleet) {
	e := newExecutor(t, f.GitHub.APIURL())
	merge := strings.Repeat("a", 40)
	req := executor.Request{Args: []string{"follow", "kustomization", "apps", "--sha", merge}, Identity: admin, Namespace: fluxNS}
	res, err := e.Execute(t.Context(), req)
	require.NoError(t, err)
	require.True(t, res.Ongoing)
	require.Contains(t, res.Output, "Waiting for Kustomization flux-src/apps to apply aaaaaaa: applied main@sha1:"+f.MainSHA+", Ready=True")

	// kustomize-controller starts on the merge: Ready Unknown, then Ready at it.
	type watched struct {
		res  executor.Result
		done bool
		err  error
	}
	watch := func(last executor.Result) <-chan watched {
		ch := make(chan watched, 1)
		go func() {
			r, done, err := e.Watch(t.Context(), req, last)
			ch <- watched{r, done, err}
		}()
		return ch
	}
	w := watch(res)
	f.Reconciled(t, env, merge, metav1.ConditionUnknown, "Progressing", "Reconciliation in progress")
	got := <-w
	require.NoError(t, got.err)
	require.False(t, got.done)
	require.Contains(t, got.res.Output, "Ready=Unknown (Progressing)")

	w = watch(got.res)
	f.Reconciled(t, env, merge, metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: main@sha1:"+merge)
	got = <-w
	require.NoError(t, got.err)
	require.True(t, got.done)
	require.Equal(t, 0, got.res.ExitCode)
	require.Contains(t, got.res.Output, "Kustomization flux-src/apps is Ready at aaaaaaa (main@sha1:"+merge+").")
	require.Contains(t, got.res.Output, "Reconciled ")

	// A failure at the commit ends the follow too.
	broken := strings.Repeat("b", 40)
	f.Reconciled(t, env, broken, metav1.ConditionFalse, "BuildFailed", "kustomize build failed: missing.yaml")
	res, err = e.Execute(t.Context(), executor.Request{Args: []string{"follow", "kustomization", "apps", "--sha", broken}, Identity: admin, Namespace: fluxNS})
	require.NoError(t, err)
	require.False(t, res.Ongoing)
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Errors, "failed at bbbbbbb: BuildFailed: kustomize build failed: missing.yaml")

	// Restore main as applied, for whoever runs after.
	f.Reconciled(t, env, f.MainSHA, metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: main@sha1:"+f.MainSHA)
}

func testBuildErrors(t *testing.T, f *fluxtest.Fleet) {
	e := newExecutor(t, f.GitHub.APIURL())
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
			f.OpenPR(t, n, "broken-"+strconv.Itoa(i), tc.files)
			res := execute(t, e, admin, append([]string{"diff", "kustomization", "apps", "--github-ref", strconv.Itoa(n)}, tc.args...)...)
			require.Equal(t, 1, res.ExitCode, res.Output)
			for _, want := range tc.errors {
				require.Contains(t, res.Errors, want)
			}
			require.NotContains(t, res.Errors, "kubechat-flux-", "the temporary checkout's path stays out of the error")
		})
	}
}

func testSkipped(t *testing.T, f *fluxtest.Fleet) {
	f.OpenPR(t, 9, "scale-web-3", fluxtest.PRFiles())
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

	res := execute(t, newExecutor(t, f.GitHub.APIURL()), reviewer, "diff", "kustomization", "apps", "--github-ref", "9")
	require.Equal(t, 0, res.ExitCode, res.Errors)
	lines := objectLines(res.Output)
	require.Len(t, lines, 3, res.Output)
	require.Contains(t, lines[0], "ConfigMap/flux-apps/settings skipped: forbidden: ")
	require.Contains(t, lines[0], `User "rita" cannot patch resource "configmaps"`)
	require.Equal(t, "Deployment/flux-apps/web configured", lines[1])
	require.Equal(t, "Service/flux-apps/web deleted", lines[2])
	require.NotContains(t, res.Output, fluxtest.DBPassword)

	// Without the right to read the Kustomization, nothing runs.
	nobody := executor.Identity{User: "nobody"}
	denied := execute(t, newExecutor(t, f.GitHub.APIURL()), nobody, "diff", "kustomization", "apps", "--github-ref", "9")
	require.True(t, denied.Forbidden, denied.Errors)
}

func testGet(t *testing.T, f *fluxtest.Fleet) {
	e := newExecutor(t, f.GitHub.APIURL())
	res := execute(t, e, admin, "get", "kustomizations")
	require.Equal(t, 0, res.ExitCode, res.Errors)
	lines := strings.Split(strings.TrimSpace(res.Output), "\n")
	require.Len(t, lines, 2, res.Output)
	require.Equal(t, []string{"NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"apps", "main@sha1:" + f.MainSHA, "False", "True", "Applied", "revision:", "main@sha1:" + f.MainSHA}, strings.Fields(lines[1]))

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
		_, err := e.Analyze(t.Context(), strings.Fields(args))
		require.ErrorContains(t, err, want, args)
	}
	a, err := e.Analyze(t.Context(), []string{"approve", "ks", "apps", "-n", "x", "--github-ref", "1", "--sha", strings.Repeat("a", 40)})
	require.NoError(t, err)
	require.Equal(t, executor.Analysis{Verb: "approve", Namespaces: []string{"x"},
		Resources: []executor.Resource{{Group: "kustomize.toolkit.fluxcd.io", Resource: "kustomizations", Namespaced: true}}}, a)
	require.ElementsMatch(t, []string{"diff", "follow", "get kustomizations", "get sources git"}, e.ReadOnlyVerbs())
	_, err = e.Analyze(t.Context(), []string{"follow", "ks", "apps", "--sha", strings.Repeat("a", 40), "--github-ref", "1"})
	require.ErrorContains(t, err, "flux follow takes -n and --sha only")
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
