package argocd

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/kubechat/kubechat/internal/argocd"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{}) }

const appNS = "argocd"

// The identities: an admin, an operator who may sync (patch), and a
// viewer who may only read Applications.
var (
	admin    = executor.Identity{User: "argo-admin", Groups: []string{"system:masters"}}
	operator = executor.Identity{User: "olga", Groups: []string{"argo-operators"}}
	viewer   = executor.Identity{User: "victor", Groups: []string{"argo-viewers"}}
)

// world installs the Argo CD CRDs, the namespace and the RBAC of the
// identities, once per test binary.
func world(t *testing.T) dynamic.NamespaceableResourceInterface {
	t.Helper()
	testenv.Skip(t, env)
	ctx := t.Context()
	dir, err := testenv.ArgoCDCRDDir()
	require.NoError(t, err)
	require.NoError(t, env.InstallCRDs(ctx, dir), "the Argo CD CRDs come from make testbin")
	require.NoError(t, env.CreateNamespace(ctx, appNS))
	for name, verbs := range map[string][]string{"argo-viewer": {"get", "list", "watch"}, "argo-operator": {"get", "list", "watch", "patch"}} {
		_, err := env.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{argocd.Group}, Resources: []string{"applications"}, Verbs: verbs}},
		}, metav1.CreateOptions{})
		if err == nil {
			require.NoError(t, env.BindGroupToClusterRole(ctx, name+"s", name))
		}
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	return dyn.Resource(argocd.Applications)
}

// source is the guestbook Application's source.
func source(path string) map[string]any {
	return map[string]any{"repoURL": "https://github.com/acme/fleet.git", "path": path, "targetRevision": "main"}
}

// newApp creates Application name, healthy and synced at revision rev,
// with two history entries, as the application controller leaves it.
func newApp(t *testing.T, apps dynamic.NamespaceableResourceInterface, name string, spec map[string]any) *unstructured.Unstructured {
	t.Helper()
	if spec == nil {
		spec = map[string]any{
			"project":     "default",
			"source":      source("apps/" + name),
			"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": "web"},
			"syncPolicy": map[string]any{"syncOptions": []any{"CreateNamespace=true"},
				"retry": map[string]any{"limit": int64(2)}},
		}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
		"metadata": map[string]any{"name": name, "namespace": appNS, "labels": map[string]any{"team": "web", "test": strings.ReplaceAll(t.Name(), "/", ".")}},
		"spec":     spec,
	}}
	_, err := apps.Namespace(appNS).Create(t.Context(), u, metav1.CreateOptions{})
	require.NoError(t, err)
	return setStatus(t, apps, name, func(st map[string]any) {
		st["sync"] = map[string]any{"status": "Synced", "revision": rev2}
		st["health"] = map[string]any{"status": "Healthy", "lastTransitionTime": now()}
		st["resources"] = []any{
			map[string]any{"kind": "Service", "namespace": "web", "name": name, "version": "v1", "status": "Synced", "health": map[string]any{"status": "Healthy"}},
			map[string]any{"group": "apps", "kind": "Deployment", "namespace": "web", "name": name, "version": "v1", "status": "Synced", "health": map[string]any{"status": "Healthy"}},
		}
		st["history"] = []any{
			map[string]any{"id": int64(0), "revision": rev1, "deployedAt": "2026-12-01T10:00:00Z", "source": source("apps/" + name),
				"initiatedBy": map[string]any{"automated": true}},
			map[string]any{"id": int64(1), "revision": rev2, "deployedAt": "2026-12-02T10:00:00Z", "source": source("apps/" + name),
				"initiatedBy": map[string]any{"username": "admin"}},
		}
		st["reconciledAt"] = now()
	})
}

const (
	rev1 = "1111111111111111111111111111111111111111"
	rev2 = "2222222222222222222222222222222222222222"
)

func now() string { return time.Now().UTC().Format(time.RFC3339) }

// setStatus changes the Application's status as the application
// controller does: the Application has no status subresource, so the
// controller writes it on the object itself.
func setStatus(t *testing.T, apps dynamic.NamespaceableResourceInterface, name string, change func(st map[string]any)) *unstructured.Unstructured {
	t.Helper()
	return update(t, apps, name, func(u *unstructured.Unstructured) {
		st, _, _ := unstructured.NestedMap(u.Object, "status")
		if st == nil {
			st = map[string]any{}
		}
		change(st)
		u.Object["status"] = st
	})
}

func update(t *testing.T, apps dynamic.NamespaceableResourceInterface, name string, change func(u *unstructured.Unstructured)) *unstructured.Unstructured {
	t.Helper()
	for {
		u, err := apps.Namespace(appNS).Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		change(u)
		u, err = apps.Namespace(appNS).Update(t.Context(), u, metav1.UpdateOptions{})
		if err == nil {
			return u
		}
		require.Contains(t, err.Error(), "the object has been modified")
	}
}

func newExecutor(t *testing.T, settings string) *Executor {
	t.Helper()
	raw, err := config.RawFromYAML(settings)
	require.NoError(t, err)
	e, err := New("argocd", raw, executor.Deps{RESTConfig: env.Config, Cluster: "test-cluster"})
	require.NoError(t, err)
	return e.(*Executor)
}

func execute(t *testing.T, e *Executor, id executor.Identity, args ...string) executor.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	res, err := e.Execute(ctx, executor.Request{Args: args, Identity: id, Namespace: appNS,
		Caller: executor.Caller{Platform: "slack", UserName: "alice"}})
	require.NoError(t, err)
	return res
}

func TestReadVerbs(t *testing.T) {
	apps := world(t)
	newApp(t, apps, "guestbook", nil)
	newApp(t, apps, "other", map[string]any{"project": "team-b", "source": source("apps/other"),
		"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": "other"}})
	e := newExecutor(t, "url: https://argocd.example.com")

	list := execute(t, e, viewer, "app", "list", "--project", "default", "-l", "test=TestReadVerbs")
	require.Equal(t, 0, list.ExitCode, list.Errors)
	lines := strings.Split(strings.TrimSpace(list.Output), "\n")
	require.Len(t, lines, 2, list.Output)
	require.Equal(t, []string{"NAME", "CLUSTER", "NAMESPACE", "PROJECT", "STATUS", "HEALTH", "SYNCPOLICY", "CONDITIONS", "REPO", "PATH", "TARGET"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"argocd/guestbook", "https://kubernetes.default.svc", "web", "default", "Synced", "Healthy", "Manual", "<none>",
		"https://github.com/acme/fleet.git", "apps/guestbook", "main"}, strings.Fields(lines[1]))
	bySelector := execute(t, e, viewer, "app", "list", "-l", "team=web,test=TestReadVerbs")
	require.Len(t, strings.Split(strings.TrimSpace(bySelector.Output), "\n"), 3, bySelector.Output)
	none := execute(t, e, viewer, "app", "list", "-l", "team=none")
	require.Equal(t, "no applications found in namespace argocd\n", none.Errors)

	get := execute(t, e, viewer, "app", "get", "guestbook")
	require.Equal(t, 0, get.ExitCode, get.Errors)
	for _, want := range []string{"Name:", "argocd/guestbook", "https://argocd.example.com/applications/argocd/guestbook",
		"Sync Status:", "Synced to main (2222222)", "Health Status:", "Healthy", "Deployment  web        guestbook  Synced  Healthy"} {
		require.Contains(t, get.Output, want)
	}
	require.Equal(t, "View in Argo CD", get.Buttons[len(get.Buttons)-1].Label)

	hist := execute(t, e, viewer, "app", "history", "guestbook")
	lines = strings.Split(strings.TrimSpace(hist.Output), "\n")
	require.Len(t, lines, 3, hist.Output)
	require.Equal(t, []string{"1", "2026-12-02T10:00:00Z", rev2, "https://github.com/acme/fleet.git", "apps/guestbook", "admin"}, strings.Fields(lines[1]))
	require.Equal(t, []string{"0", "2026-12-01T10:00:00Z", rev1, "https://github.com/acme/fleet.git", "apps/guestbook", "automated"}, strings.Fields(lines[2]))

	res := execute(t, e, viewer, "app", "resources", "guestbook")
	require.Contains(t, res.Output, "REQUIRES PRUNING")
	require.Contains(t, res.Output, "Service")

	missing := execute(t, e, viewer, "app", "get", "nope")
	require.Equal(t, 1, missing.ExitCode)
	require.Equal(t, "Error: application argocd/nope not found\n", missing.Errors)

	nobody := execute(t, e, executor.Identity{User: "nobody"}, "app", "list")
	require.True(t, nobody.Forbidden, nobody.Errors)
}

// TestSyncWritesArgoCDsOperation: app sync, app rollback and app refresh
// write exactly what Argo CD's API server writes for the same request
// (server/application Sync and Rollback, util/argo SetAppOperation, in
// Argo CD v3.6.1), as JSON; a viewer is refused by Kubernetes RBAC.
func TestSyncWritesArgoCDsOperation(t *testing.T) {
	apps := world(t)
	newApp(t, apps, "writes", nil)
	e := newExecutor(t, "")

	denied := execute(t, e, viewer, "app", "sync", "writes")
	require.True(t, denied.Forbidden, denied.Errors)
	require.Contains(t, denied.Errors, `User "victor" cannot patch resource "applications"`)
	u, err := apps.Namespace(appNS).Get(t.Context(), "writes", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotContains(t, u.Object, "operation", "a refused sync writes nothing")

	// The shape of an Operation, field for field from Argo CD's
	// types.go: what "argocd app sync writes --prune --revision v2"
	// sends through the API server.
	src := `{"repoURL":"https://github.com/acme/fleet.git","path":"apps/writes","targetRevision":"main"}`
	res := execute(t, e, operator, "app", "sync", "writes", "--prune", "--revision", "v2")
	require.Equal(t, 0, res.ExitCode, res.Errors)
	require.True(t, res.Ongoing)
	require.JSONEq(t, `{
		"sync": {"revision": "v2", "prune": true, "syncStrategy": {"hook": {}}, "source": `+src+`,
		         "syncOptions": ["CreateNamespace=true"]},
		"initiatedBy": {"username": "alice (slack via kubechat)"},
		"retry": {"limit": 2}
	}`, operationJSON(t, apps, "writes"))

	again := execute(t, e, operator, "app", "sync", "writes")
	require.Equal(t, "Error: another operation is already in progress on application argocd/writes\n", again.Errors)

	// The controller finishes it; a dry run then, with the defaults.
	finish(t, apps, "writes", argocd.PhaseSucceeded, "successfully synced (all tasks run)")
	res = execute(t, e, operator, "app", "sync", "writes", "--dry-run")
	require.Equal(t, 0, res.ExitCode, res.Errors)
	require.JSONEq(t, `{
		"sync": {"revision": "main", "dryRun": true, "syncStrategy": {"hook": {}}, "source": `+src+`,
		         "syncOptions": ["CreateNamespace=true"]},
		"initiatedBy": {"username": "alice (slack via kubechat)"},
		"retry": {"limit": 2}
	}`, operationJSON(t, apps, "writes"))
	u, err = apps.Namespace(appNS).Get(t.Context(), "writes", metav1.GetOptions{})
	require.NoError(t, err)
	_, found, _ := unstructured.NestedMap(u.Object, "status", "operationState")
	require.False(t, found, "the last operation's state is cleared, as SetAppOperation does")
	finish(t, apps, "writes", argocd.PhaseSucceeded, "done")

	// Rollback: history entry 0's revision and source, the apply strategy, no retry.
	res = execute(t, e, operator, "app", "rollback", "writes", "0")
	require.Equal(t, 0, res.ExitCode, res.Errors)
	require.JSONEq(t, `{
		"sync": {"revision": "`+rev1+`", "syncStrategy": {"apply": {}}, "source": `+src+`,
		         "syncOptions": ["CreateNamespace=true"]},
		"initiatedBy": {"username": "alice (slack via kubechat)"},
		"retry": {}
	}`, operationJSON(t, apps, "writes"))
	finish(t, apps, "writes", argocd.PhaseSucceeded, "done")
	unknown := execute(t, e, operator, "app", "rollback", "writes", "7")
	require.Equal(t, "Error: application argocd/writes does not have deployment with id 7 (see app history)\n", unknown.Errors)

	// Refresh: the annotation the controller acts on.
	res = execute(t, e, operator, "app", "refresh", "writes", "--hard")
	require.Equal(t, 0, res.ExitCode, res.Errors)
	u, err = apps.Namespace(appNS).Get(t.Context(), "writes", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "hard", u.GetAnnotations()[argocd.RefreshAnnotation])

	// With automated sync, a rollback is refused, as Argo CD refuses it.
	update(t, apps, "writes", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, map[string]any{"prune": true}, "spec", "syncPolicy", "automated"))
	})
	auto := execute(t, e, operator, "app", "rollback", "writes", "0")
	require.Equal(t, "Error: rollback cannot be initiated when auto-sync is enabled\n", auto.Errors)
}

func operationJSON(t *testing.T, apps dynamic.NamespaceableResourceInterface, name string) string {
	t.Helper()
	u, err := apps.Namespace(appNS).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	op, found, err := unstructured.NestedMap(u.Object, "operation")
	require.NoError(t, err)
	require.True(t, found, "no operation on %s", name)
	b, err := json.Marshal(op)
	require.NoError(t, err)
	return string(b)
}

// start moves the Application's operation into a running operation
// state, as the application controller does when it picks it up.
func start(t *testing.T, apps dynamic.NamespaceableResourceInterface, name string) {
	t.Helper()
	update(t, apps, name, func(u *unstructured.Unstructured) {
		op, _, _ := unstructured.NestedMap(u.Object, "operation")
		require.NoError(t, unstructured.SetNestedField(u.Object, map[string]any{
			"operation": op, "phase": argocd.PhaseRunning, "message": "one or more tasks are running", "startedAt": now(),
		}, "status", "operationState"))
	})
}

// finish ends the running (or just requested) operation with phase, as
// the controller does: the result in the operation state, the operation
// removed, the sync status and history updated on success.
func finish(t *testing.T, apps dynamic.NamespaceableResourceInterface, name, phase, message string) {
	t.Helper()
	update(t, apps, name, func(u *unstructured.Unstructured) {
		op, _, _ := unstructured.NestedMap(u.Object, "operation")
		if op == nil {
			op, _, _ = unstructured.NestedMap(u.Object, "status", "operationState", "operation")
		}
		rev, _, _ := unstructured.NestedString(op, "sync", "revision")
		require.NoError(t, unstructured.SetNestedField(u.Object, map[string]any{
			"operation": op, "phase": phase, "message": message, "startedAt": now(), "finishedAt": now(),
			"syncResult": map[string]any{"revision": rev, "resources": []any{
				map[string]any{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "web", "name": name, "status": map[bool]string{true: "Synced", false: "SyncFailed"}[phase == argocd.PhaseSucceeded],
					"message": "deployment.apps/" + name + " configured", "hookPhase": "Running"},
			}},
		}, "status", "operationState"))
		delete(u.Object, "operation")
	})
}

func TestParseErrorsNameTheBadWord(t *testing.T) {
	e := &Executor{}
	for args, want := range map[string]string{
		"":                                   "no argocd command given",
		"proj list":                          `"proj" is not an argocd command`,
		"app delete guestbook":               `"delete" is not an argocd app command`,
		"app sync":                           "give exactly one application NAME",
		"app sync a --hard":                  "does not take --hard",
		"app get a --prune":                  "does not take --prune",
		"app rollback a":                     "give the application NAME and a history ID",
		"app rollback a x":                   `history ID "x" is not a number`,
		"app list -n a -A":                   "give -n or -A, not both",
		"app sync a --kubeconfig /etc/x":     "unknown flag: --kubeconfig",
		"app list extra":                     "takes no names",
		"app refresh a --revision 1":         "does not take --revision",
		"app history a b":                    "give exactly one application NAME",
		"app resources a --dry-run":          "does not take --dry-run",
		"app diff a b":                       "give exactly one application NAME",
		"app sync a --revision x --prune -A": "does not take --all-namespaces",
		"app follow a":                       "--sha is required",
		"app follow a --sha abc":             `--sha "abc": not a full commit id`,
		"app follow a --github-ref 1 --sha " + strings.Repeat("a", 40): "does not take --github-ref",
		"app report a --sha " + strings.Repeat("a", 40):                "--github-ref and --sha are required",
	} {
		_, err := e.Analyze(t.Context(), strings.Fields(args))
		require.ErrorContains(t, err, want, args)
	}
	a, err := e.Analyze(t.Context(), []string{"app", "sync", "web", "-n", "team-a", "--prune"})
	require.NoError(t, err)
	require.Equal(t, executor.Analysis{Verb: "app sync", Namespaces: []string{"team-a"}, Confirm: true,
		Resources: []executor.Resource{{Group: "argoproj.io", Resource: "applications", Namespaced: true}}}, a)
	a, err = e.Analyze(t.Context(), []string{"app", "list", "-A"})
	require.NoError(t, err)
	require.False(t, a.Confirm)
	require.True(t, a.AllNamespaces)
	require.ElementsMatch(t, []string{"app list", "app get", "app history", "app resources", "app diff", "app follow"}, e.ReadOnlyVerbs(),
		"report, comment and approve write to GitHub: only where a policy lists them")
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	for settings, want := range map[string]string{
		"url: ftp://x": "settings.url",
		"urls: x":      "urls",
	} {
		raw, err := config.RawFromYAML(settings)
		require.NoError(t, err)
		_, err = New("argocd", raw, executor.Deps{})
		require.ErrorContains(t, err, want, settings)
	}
}
