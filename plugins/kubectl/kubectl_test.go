package kubectl

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{}) }

const ns = "kubectl-test"

// viewer may read everything in the test namespace, Secrets included, and list nodes.
var viewer = executor.Identity{User: "viewer", Groups: []string{"viewers"}}

var setupOnce = map[string]bool{}

func setup(t *testing.T) {
	t.Helper()
	testenv.Skip(t, env)
	if setupOnce[ns] {
		return
	}
	ctx := t.Context()
	require.NoError(t, env.InstallCRDs(ctx, "testdata/crds"))
	require.NoError(t, env.CreateNamespace(ctx, ns))
	c := env.Client
	for _, d := range []string{"web", "api"} {
		_, err := c.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment(d, nil), metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = env.WaitForPod(ctx, ns, "app="+d, testenv.PodReady)
		require.NoError(t, err)
	}
	_, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": "fast"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Data: map[string][]byte{"password": []byte("hunter2-very-secret"), "user": []byte("admin-user")}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "viewers-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "admin"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", Name: "viewers"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "node-viewer"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes", "namespaces", "pods"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "viewers-nodes"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "node-viewer"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", Name: "viewers"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	setupOnce[ns] = true
}

func newExecutor(t *testing.T) *Executor {
	t.Helper()
	e, err := New("kubectl", config.Raw{}, executor.Deps{RESTConfig: env.Config})
	require.NoError(t, err)
	return e.(*Executor)
}

// ages are kubectl's relative times ("5s", "2m3s", "10d").
var ages = regexp.MustCompile(`\b\d+[smhdy](\d+[smh])?\b`)

func maskAges(s string) string { return ages.ReplaceAllString(s, "AGE") }

// realKubectl runs the kubectl binary built from the same version, as the same identity.
func realKubectl(t *testing.T, id executor.Identity, args ...string) (string, string) {
	t.Helper()
	bin, err := testenv.BinDir()
	require.NoError(t, err)
	full := []string{"--kubeconfig", env.Kubeconfig(), "--as", id.User}
	for _, g := range id.Groups {
		full = append(full, "--as-group", g)
	}
	cmd := exec.Command(filepath.Join(bin, "kubectl"), append(full, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	return out.String(), errb.String()
}

// TestOutputMatchesRealKubectl: the in-process executor prints exactly what
// the kubectl binary prints for the same command and identity.
func TestOutputMatchesRealKubectl(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	pods, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	require.NoError(t, err)
	pod := pods.Items[0].Name
	commands := [][]string{
		{"get", "pods", "-n", ns},
		{"get", "pods", "-n", ns, "-o", "wide"},
		{"get", "pods", "-n", ns, "-o", "yaml"},
		{"get", "pods", "-n", ns, "-o", "json"},
		{"get", "pods", "-n", ns, "-l", "app=web"},
		{"get", "pods", "-n", ns, "-l", "app in (web,api)", "-o", "name"},
		{"get", "pods", "-n", ns, "--show-labels"},
		{"get", "pods", "-A"},
		{"get", "pods", "--all-namespaces", "-o", "wide"},
		{"get", "pods", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"},
		{"get", "pods", "-n", ns, "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName"},
		{"get", "deployments", "-n", ns},
		{"get", "deploy", "web", "-n", ns, "-o", "yaml"},
		{"get", "deploy,svc,cm", "-n", ns},
		{"get", "svc", "web", "-n", ns, "-o", "json"},
		{"get", "nodes"},
		{"get", "nodes", "-o", "wide"},
		{"get", "namespaces"},
		{"describe", "deployment", "web", "-n", ns},
		{"describe", "pod", pod, "-n", ns},
		{"describe", "configmap", "settings", "-n", ns},
		{"describe", "node", env.Nodes[0]},
		{"get", "pod", "does-not-exist", "-n", ns},
	}
	for _, args := range commands {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			// AGE columns tick: retry until both ran within the same
			// second; on a machine too busy for that, compare with the
			// ages masked.
			var got executor.Result
			var wantOut, wantErr string
			for range 3 {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				got, err = e.Execute(ctx, executor.Request{Args: args, Identity: viewer})
				cancel()
				require.NoError(t, err)
				wantOut, wantErr = realKubectl(t, viewer, args...)
				if got.Output == wantOut && got.Errors == wantErr {
					break
				}
			}
			require.Equal(t, maskAges(wantOut), maskAges(got.Output))
			require.Equal(t, maskAges(wantErr), maskAges(got.Errors))
			require.NotEmpty(t, got.Output+got.Errors)
		})
	}
}

func TestRBACIsEnforcedByImpersonation(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	res, err := e.Execute(t.Context(), executor.Request{Args: []string{"delete", "pod", "x", "-n", "default"}, Identity: viewer})
	require.NoError(t, err)
	require.True(t, res.Forbidden)
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Errors, `User "viewer" cannot delete resource "pods" in API group "" in the namespace "default"`)

	_, err = e.Execute(t.Context(), executor.Request{Args: []string{"get", "pods"}})
	require.ErrorIs(t, err, executor.ErrDenied, "no identity, no run")
}

func TestComplete(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	ctx := t.Context()
	res, err := e.Complete(ctx, viewer, "resource", nil)
	require.NoError(t, err)
	require.Contains(t, res, "pods")
	require.Contains(t, res, "deployments.apps")
	require.NotContains(t, res, "pods/log", "no subresources")

	nss, err := e.Complete(ctx, viewer, "namespace", nil)
	require.NoError(t, err)
	require.Contains(t, nss, ns)

	names, err := e.Complete(ctx, viewer, "name", map[string]string{"resource": "deployments.apps", "namespace": ns})
	require.NoError(t, err)
	require.Equal(t, []string{"api", "web"}, names)

	_, err = e.Complete(ctx, executor.Identity{User: "nobody"}, "name", map[string]string{"resource": "pods", "namespace": ns})
	require.ErrorIs(t, err, executor.ErrDenied, "listing is done as the identity, so RBAC applies")
	_, err = e.Complete(ctx, viewer, "name", map[string]string{"resource": "widgets", "namespace": ns})
	require.ErrorContains(t, err, `the server has no resource "widgets"`)
}

// TestConcurrentCommands: commands built and run at once (typed commands and
// actions) share kubectl's package state safely; run with -race.
func TestConcurrentCommands(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	outs := make(chan string, 4)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := e.Analyze(t.Context(), []string{"get", "pods"}); err != nil {
				errs <- err
			}
			res, err := e.Execute(t.Context(), executor.Request{Args: []string{"get", "pods"}, Namespace: ns, Identity: viewer, MaxOutputBytes: 1 << 20})
			if err != nil {
				errs <- err
			}
			outs <- res.Output
		})
	}
	wg.Wait()
	close(outs)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for out := range outs {
		require.Contains(t, out, "web-")
	}

	// A server warning reaches the command that caused it and no other.
	warned := make(chan executor.Result, 8)
	for i := range 8 {
		wg.Go(func() {
			args := []string{"get", "pods"}
			if i%2 == 0 {
				args = []string{"get", "endpoints"}
			}
			res, err := e.Execute(t.Context(), executor.Request{Args: args, Namespace: ns, Identity: viewer})
			require.NoError(t, err)
			res.Output = args[1]
			warned <- res
		})
	}
	wg.Wait()
	close(warned)
	for res := range warned {
		if res.Output == "endpoints" {
			require.Contains(t, res.Errors, "Warning: v1 Endpoints is deprecated")
		} else {
			require.NotContains(t, res.Errors, "Warning", "another command's warning")
		}
	}
}

// TestTwentyCommandsKeepTheirOwnOutput: twenty commands at once, each in a
// namespace of its own, each reading its own objects; every output names
// its own namespace and no other (run with -race: the command trees share
// no state).
func TestTwentyCommandsKeepTheirOwnOutput(t *testing.T) {
	setup(t)
	ctx := t.Context()
	const n = 20
	name := func(i int) string { return fmt.Sprintf("crosstalk-%02d", i) }
	for i := range n {
		require.NoError(t, env.CreateNamespace(ctx, name(i)))
		_, err := env.Client.CoreV1().ConfigMaps(name(i)).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "own-" + name(i)}, Data: map[string]string{"owner": name(i)},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = env.Client.RbacV1().RoleBindings(name(i)).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "viewers-view"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{Kind: "Group", Name: "viewers"}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	e := newExecutor(t)
	results := make([]executor.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Half list their namespace's ConfigMaps (the default
			// namespace of the request), half describe their own by -n.
			args := []string{"get", "configmaps", "-o", "yaml"}
			reqNS := name(i)
			if i%2 == 1 {
				args = []string{"describe", "configmap", "own-" + name(i), "-n", name(i)}
				reqNS = ""
			}
			results[i], errs[i] = e.Execute(ctx, executor.Request{Args: args, Namespace: reqNS, Identity: viewer, MaxOutputBytes: 1 << 20})
		})
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Zero(t, results[i].ExitCode, results[i].Errors)
		require.Contains(t, results[i].Output, "own-"+name(i))
		for j := range n {
			if j != i {
				require.NotContains(t, results[i].Output+results[i].Errors, name(j), "command %d shows command %d's objects", i, j)
			}
		}
	}
}

// TestRolloutStatusWaitsBounded: rollout status watches until the rollout
// ends; a rollout that never ends is reported when the command's time is
// nearly up, with what kubectl printed, not cut off.
func TestRolloutStatusWaitsBounded(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	d := testenv.Deployment("stuck", map[string]string{"kubechat.test/crashloop": "true"})
	_, err := env.Client.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Second)
	defer cancel()
	res, err := e.Execute(ctx, executor.Request{Args: []string{"rollout", "status", "deploy/stuck"}, Namespace: ns, Identity: viewer})
	require.NoError(t, err, "it ends before the command's deadline")
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Output, `Waiting for deployment "stuck" rollout to finish`)
	require.Contains(t, res.Errors, "timed out waiting for the condition")
}
