// Package fluxtest sets up a Flux world for tests of the flux executor: a
// "fleet" repository served by the real git over smart HTTP, a fake GitHub
// whose pull requests point at it, and in the test control plane the Flux
// CRDs, a GitRepository, a Kustomization (with post-build substitutions,
// one from a Secret) and the objects of main applied as kustomize-controller
// would, with the Kustomization's inventory recorded.
package fluxtest

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/ssa"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubechat/kubechat/internal/github/githubtest"
	"github.com/kubechat/kubechat/internal/gittest"
	"github.com/kubechat/kubechat/internal/testenv"
)

// The fleet's names.
const (
	Owner         = "acme"
	Repo          = "fleet"
	Kustomization = "apps"
	// DBPassword comes from a Secret through postBuild.substituteFrom: it
	// must never show in chat or on GitHub.
	DBPassword = "hunter2-s3cr3t-from-a-secret"
	// Env is the postBuild.substitute value of ${ENV}.
	Env = "prod"
	// GitHubToken is the token the fake GitHub accepts.
	GitHubToken = "ghp_fleet-test-token"
)

// Fleet is the set-up world.
type Fleet struct {
	Git    *gittest.Server
	Work   *gittest.Repo
	GitHub *githubtest.Server
	// MainSHA is the commit of main, applied to the cluster.
	MainSHA string
	// AppNS holds the applied objects, FluxNS the Flux objects.
	AppNS, FluxNS string
}

// Deployment is the web Deployment's manifest.
func Deployment(replicas int, image string) string {
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

// PRFiles are the changes of the pull requests tests open: the
// Deployment's replicas (1 → 3) and image (nginx:1.25 → 1.27), a new
// ConfigMap that takes a value from the Secret, and the Service removed.
func PRFiles() map[string]string {
	return map[string]string{
		"deploy/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml, configmap.yaml, serviceaccount.yaml]\n",
		"deploy/deployment.yaml":    Deployment(3, "nginx:1.27"),
		"deploy/configmap.yaml":     configMap,
		"deploy/service.yaml":       "",
	}
}

// mainFiles are the fleet's files on main.
func mainFiles() map[string]string {
	return map[string]string{
		"deploy/kustomization.yaml":  "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml, service.yaml, serviceaccount.yaml]\n",
		"deploy/deployment.yaml":     Deployment(1, "nginx:1.25"),
		"deploy/service.yaml":        service,
		"deploy/serviceaccount.yaml": serviceAccount,
	}
}

// NewRepository sets up the fleet's repository and GitHub only: main
// committed, nothing in the cluster. The servers stop with t.
func NewRepository(t *testing.T) *Fleet {
	t.Helper()
	f := &Fleet{Git: gittest.NewServer(t), GitHub: githubtest.New(t, GitHubToken)}
	// A private repository: clones need the GitHub token.
	f.Git.RequireToken(GitHubToken)
	f.Work = f.Git.NewRepo(t, Repo)
	f.Work.Write(mainFiles())
	f.MainSHA = f.Work.Commit("main", "fleet: web")
	return f
}

// New sets up the fleet in env: the objects go to appNS, the Flux objects
// to fluxNS (both created here). The servers stop with t.
func New(t *testing.T, env *testenv.Env, appNS, fluxNS string) *Fleet {
	t.Helper()
	ctx := t.Context()
	dir, err := testenv.FluxCRDDir()
	require.NoError(t, err)
	require.NoError(t, env.InstallCRDs(ctx, dir), "the Flux CRDs come from make testbin")
	for _, n := range []string{appNS, fluxNS} {
		require.NoError(t, env.CreateNamespace(ctx, n))
	}
	f := NewRepository(t)
	f.AppNS, f.FluxNS = appNS, fluxNS
	main := mainFiles()

	kc, err := Client(env)
	require.NoError(t, err)
	require.NoError(t, kc.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-vars", Namespace: fluxNS},
		StringData: map[string]string{"DB_PASSWORD": DBPassword},
	}))
	require.NoError(t, kc.Create(ctx, &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: Repo, Namespace: fluxNS},
		Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/" + Owner + "/" + Repo + ".git", Interval: metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
	}))
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: Kustomization, Namespace: fluxNS},
		Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: time.Minute}, Path: "./deploy", Prune: true, TargetNamespace: appNS,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: Repo},
			PostBuild: &kustomizev1.PostBuild{
				Substitute:     map[string]string{"ENV": Env},
				SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "Secret", Name: "cluster-vars"}},
			},
		},
	}
	require.NoError(t, kc.Create(ctx, ks))

	// Apply main as kustomize-controller would (its field manager, its
	// owner labels, the target namespace and substitutions), and record the
	// inventory: the cluster a pull request is diffed against.
	var text []string
	for _, p := range []string{"deploy/deployment.yaml", "deploy/service.yaml", "deploy/serviceaccount.yaml"} {
		text = append(text, strings.ReplaceAll(main[p], "${ENV}", Env))
	}
	objects, err := ssautil.ReadObjects(strings.NewReader(strings.Join(text, "---\n")))
	require.NoError(t, err)
	man := ssa.NewResourceManager(kc, nil, ssa.Owner{Field: "kustomize-controller", Group: "kustomize.toolkit.fluxcd.io"})
	for _, o := range objects {
		o.SetNamespace(appNS)
	}
	man.SetOwnerLabels(objects, Kustomization, fluxNS)
	_, err = man.ApplyAll(ctx, objects, ssa.DefaultApplyOptions())
	require.NoError(t, err)
	inv := &kustomizev1.ResourceInventory{}
	for _, o := range objects {
		inv.Entries = append(inv.Entries, kustomizev1.ResourceRef{ID: object.UnstructuredToObjMetadata(o).String(), Version: o.GroupVersionKind().Version})
	}
	require.NoError(t, kc.Get(ctx, client.ObjectKeyFromObject(ks), ks))
	ks.Status.Inventory = inv
	ks.Status.LastAppliedRevision = "main@sha1:" + f.MainSHA
	ks.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: "ReconciliationSucceeded",
		Message: "Applied revision: main@sha1:" + f.MainSHA, LastTransitionTime: metav1.Now()}}
	require.NoError(t, kc.Status().Update(ctx, ks))
	return f
}

// quietLogger gives controller-runtime its logger once, before any client:
// left unset, its logger replaces itself after 30 s while clients are being
// made, which the race detector reports.
var quietLogger sync.Once

// Client is an admin client of env that knows the Flux and core kinds.
func Client(env *testenv.Env) (client.Client, error) {
	quietLogger.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, kustomizev1.AddToScheme, sourcev1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return client.New(env.Config, client.Options{Scheme: scheme})
}

// OpenPR pushes branch with files changed from main and opens pull request
// number from it; it returns the head commit.
func (f *Fleet) OpenPR(t *testing.T, number int, branch string, files map[string]string) string {
	t.Helper()
	f.Work.Checkout("main")
	f.Work.Write(files)
	sha := f.Work.Commit(branch, "change "+branch)
	f.Work.Checkout("main")
	f.GitHub.SetPullRequest(githubtest.PullRequest{Owner: Owner, Repo: Repo, Number: number, Title: branch,
		HeadRef: branch, HeadSHA: sha, CloneURL: f.Git.RepoURL(Repo), Files: slices.Sorted(maps.Keys(files))})
	return sha
}

// Push adds a commit with files to the branch of pull request number and
// moves its head; it returns the new head.
func (f *Fleet) Push(t *testing.T, number int, branch string, files map[string]string) string {
	t.Helper()
	f.Work.Checkout(branch)
	f.Work.Write(files)
	sha := f.Work.Commit(branch, "update "+branch)
	f.Work.Checkout("main")
	f.GitHub.SetHead(Owner, Repo, number, sha)
	f.GitHub.AddFiles(Owner, Repo, number, slices.Sorted(maps.Keys(files))...)
	return sha
}

// Reconciled writes the Kustomization's status as kustomize-controller
// does while and after applying commit sha of main: Ready is status
// (Unknown while it progresses), with reason and message; the applied
// revision moves only when it is Ready.
func (f *Fleet) Reconciled(t *testing.T, env *testenv.Env, sha string, status metav1.ConditionStatus, reason, message string) {
	t.Helper()
	ctx := t.Context()
	kc, err := Client(env)
	require.NoError(t, err)
	ks := &kustomizev1.Kustomization{}
	require.NoError(t, kc.Get(ctx, client.ObjectKey{Namespace: f.FluxNS, Name: Kustomization}, ks))
	rev := "main@sha1:" + sha
	ks.Status.LastAttemptedRevision = rev
	if status == metav1.ConditionTrue {
		ks.Status.LastAppliedRevision = rev
	}
	ks.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: status, Reason: reason, Message: message,
		LastTransitionTime: metav1.Now(), ObservedGeneration: ks.Generation}}
	require.NoError(t, kc.Status().Update(ctx, ks))
}
