package helm

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/helm/helmtest"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{}) }

const (
	ns      = "helm-test"
	otherNS = "helm-other"
)

// operator administers both test namespaces and may list Helm's release
// Secrets everywhere (helm list -A).
var operator = executor.Identity{User: "helm-operator", Groups: []string{"helm-operators"}}

var setupOnce sync.Once

func setup(t *testing.T) {
	t.Helper()
	testenv.Skip(t, env)
	setupOnce.Do(func() {
		ctx := t.Context()
		c := env.Client
		for _, n := range []string{ns, otherNS} {
			require.NoError(t, env.CreateNamespace(ctx, n))
			_, err := c.RbacV1().RoleBindings(n).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "helm-operators-admin"},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "admin"},
				Subjects:   []rbacv1.Subject{{Kind: "Group", Name: "helm-operators"}},
			}, metav1.CreateOptions{})
			require.NoError(t, err)
		}
		_, err := c.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "helm-release-lister"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "helm-operators-list"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "helm-release-lister"},
			Subjects:   []rbacv1.Subject{{Kind: "Group", Name: "helm-operators"}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		require.NoError(t, helmtest.Install(ctx, env.Config, ns, "web", helmtest.Chart("web"), map[string]any{"greeting": "hi there"}))
		require.NoError(t, helmtest.Install(ctx, env.Config, otherNS, "api", helmtest.Chart("api"), nil))
	})
}

func newExecutor(t *testing.T) *Executor {
	t.Helper()
	e, err := New("helm", config.Raw{}, executor.Deps{RESTConfig: env.Config})
	require.NoError(t, err)
	return e.(*Executor)
}

func run(t *testing.T, e *Executor, id executor.Identity, args ...string) executor.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	res, err := e.Execute(ctx, executor.Request{Args: args, Identity: id, Namespace: ns})
	require.NoError(t, err)
	return res
}

// masked is what kubechat shows of text: the web chart's password, raw or
// base64, replaced by the mask.
func masked(text string) string {
	text = strings.ReplaceAll(text, base64.StdEncoding.EncodeToString([]byte(helmtest.WebPassword)), "***")
	return strings.ReplaceAll(text, helmtest.WebPassword, "***")
}

// TestOutputMatchesRealHelm: the in-process executor prints what the helm
// CLI of the same version prints for the same command and identity, with
// the chart's Secret value masked.
func TestOutputMatchesRealHelm(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	for _, args := range [][]string{
		{"list"},
		{"ls", "-A"},
		{"list", "-A", "-o", "json"},
		{"list", "-n", otherNS, "-o", "yaml"},
		{"list", "--all", "-q"},
		{"list", "--failed"},
		{"list", "--pending", "-A"},
		{"status", "web"},
		{"status", "web", "-o", "json"},
		{"status", "web", "--show-desc", "--revision", "1"},
		{"history", "web"},
		{"hist", "web", "-o", "yaml"},
		{"history", "web", "--max", "-1"},
		{"get", "values", "web"},
		{"get", "values", "web", "--all"},
		{"get", "values", "web", "-o", "json"},
		{"get", "manifest", "web"},
		{"get", "notes", "web"},
		{"get", "hooks", "web"},
		{"get", "all", "web"},
		{"status", "api", "-n", otherNS},
		{"get", "manifest", "api", "-n", otherNS},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			res := run(t, e, operator, args...)
			require.Zero(t, res.ExitCode, res.Errors)
			cliArgs := args
			if !strings.Contains(strings.Join(args, " "), "-n ") {
				cliArgs = append([]string{"-n", ns}, args...)
			}
			want, stderr, err := helmtest.CLI(t.Context(), env.Kubeconfig(), operator, cliArgs...)
			require.NoError(t, err, stderr)
			require.Equal(t, masked(want), res.Output)
			require.NotContains(t, res.Output, helmtest.WebPassword)
		})
	}
}

func TestSecretValuesAreMasked(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	b64 := base64.StdEncoding.EncodeToString([]byte(helmtest.WebPassword))
	for _, args := range [][]string{
		{"get", "values", "web", "--all"}, {"get", "all", "web"}, {"get", "manifest", "web"}, {"status", "web", "-o", "yaml"},
	} {
		res := run(t, e, operator, args...)
		require.Zero(t, res.ExitCode, res.Errors)
		require.NotContains(t, res.Output, helmtest.WebPassword, args)
		require.NotContains(t, res.Output, b64, args)
		require.Contains(t, res.Output, "***", args)
	}
}

// TestWriteRoundTrip upgrades with --reuse-values, rolls back, and sees a
// failed upgrade leave the release failed, as the helm CLI reports it.
func TestWriteRoundTrip(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	res := run(t, e, operator, "upgrade", "web", "--reuse-values", "--set", "replicas=2")
	require.Zero(t, res.ExitCode, res.Errors)
	require.Contains(t, res.Output, `Release "web" has been upgraded. Happy Helming!`)
	require.Contains(t, res.Output, "REVISION: 2")
	res = run(t, e, operator, "get", "values", "web", "-o", "json")
	require.JSONEq(t, `{"greeting":"hi there","replicas":2}`, res.Output, "--reuse-values kept the install's values")

	res = run(t, e, operator, "rollback", "web", "1")
	require.Zero(t, res.ExitCode, res.Errors)
	require.Equal(t, "Rollback was a success! Happy Helming!\n", res.Output)

	res = run(t, e, operator, "upgrade", "web", "--reuse-values", "--set", "replicas=-1")
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Errors, "UPGRADE FAILED")
	require.Contains(t, res.Errors, "spec.replicas")

	res = run(t, e, operator, "history", "web")
	want, stderr, err := helmtest.CLI(t.Context(), env.Kubeconfig(), operator, "-n", ns, "history", "web")
	require.NoError(t, err, stderr)
	require.Equal(t, want, res.Output)
	require.Contains(t, res.Output, "Rollback to 1")
	require.Regexp(t, `4\s.*failed`, res.Output)

	// Put the release back to deployed for the other tests.
	res = run(t, e, operator, "rollback", "web", "3")
	require.Zero(t, res.ExitCode, res.Errors)
}

func TestReleaseTest(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	require.NoError(t, helmtest.Install(t.Context(), env.Config, ns, "web-tested", helmtest.Chart("web"), nil))
	res := run(t, e, operator, "test", "web-tested", "--timeout", "30s")
	require.Zero(t, res.ExitCode, res.Errors)
	require.Contains(t, res.Output, "TEST SUITE:     web-tested-test-connection")
	require.Contains(t, res.Output, "Phase:          Succeeded")
}

func TestRBACIsEnforcedByImpersonation(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	res := run(t, e, executor.Identity{User: "nobody"}, "list")
	require.Equal(t, 1, res.ExitCode)
	require.True(t, res.Forbidden, res.Errors)
	require.Contains(t, res.Errors, `User "nobody" cannot list resource "secrets"`)
}

func TestUpgradeRefusesAChart(t *testing.T) {
	e, err := New("helm", config.Raw{}, executor.Deps{})
	require.NoError(t, err)
	_, err = e.(*Executor).Analyze(t.Context(), []string{"upgrade", "web", "bitnami/nginx", "--reuse-values"})
	require.ErrorContains(t, err, `chart "bitnami/nginx": kubechat upgrades a release with the chart it has installed`)
}

func TestAnalyze(t *testing.T) {
	e, err := New("helm", config.Raw{}, executor.Deps{})
	require.NoError(t, err)
	h := e.(*Executor)
	for args, want := range map[string]executor.Analysis{
		"list":                                 {Verb: "list"},
		"ls -A":                                {Verb: "list", AllNamespaces: true},
		"list -n prod --failed":                {Verb: "list", Namespaces: []string{"prod"}},
		"status web -o json":                   {Verb: "status"},
		"hist web --max 3":                     {Verb: "history"},
		"get values web -a":                    {Verb: "get values"},
		"get all web --revision 2":             {Verb: "get all"},
		"rollback web 3 -n prod":               {Verb: "rollback", Namespaces: []string{"prod"}, Confirm: true},
		"uninstall web --keep-history":         {Verb: "uninstall", Confirm: true},
		"del web":                              {Verb: "uninstall", Confirm: true},
		"upgrade web --reuse-values --set a=b": {Verb: "upgrade", Confirm: true},
		"test web --logs":                      {Verb: "test", Confirm: true},
	} {
		got, err := h.Analyze(t.Context(), strings.Fields(args))
		require.NoError(t, err, args)
		require.Equal(t, want, got, args)
	}
	for args, msg := range map[string]string{
		"":                                     "helm needs a subcommand",
		"install web ./web":                    `unknown command "install"`,
		"get web":                              "helm get needs a subcommand",
		"status":                               "missing the release name: helm status RELEASE_NAME",
		"status a b":                           "too many arguments",
		"list -o xml":                          `"xml" is not an output format`,
		"list --kube-context prod":             "the flag --kube-context is not allowed",
		"status web --kubeconfig=/etc/k":       "the flag --kubeconfig is not allowed",
		"upgrade web -f values.yaml":           "unknown shorthand flag: 'f'",
		"upgrade web --set-file a=/etc/passwd": "unknown flag: --set-file",
		"upgrade web --set a[x]=1":             "--set: failed parsing --set data: error parsing index",
		"rollback web two":                     `revision "two" is not a revision number`,
		"uninstall web --cascade later":        `--cascade "later"`,
		"list --filter (":                      `--filter "("`,
		"test web --filter size=1":             `--filter "size=1"`,
		// Nothing reads a file or URL, downloads a chart or runs a program.
		"upgrade web --values values.yaml":                   "unknown flag: --values",
		"upgrade web oci://127.0.0.1:9/charts/web":           "downloads nothing; drop the chart argument",
		"upgrade web https://127.0.0.1:9/web-1.0.0.tgz":      "downloads nothing; drop the chart argument",
		"upgrade web --repo https://127.0.0.1:9 web":         "unknown flag: --repo",
		"upgrade web --post-renderer /bin/sh":                "unknown flag: --post-renderer",
		"upgrade web --set-json-file a=/etc/passwd":          "unknown flag: --set-json-file",
		"upgrade web --ca-file /etc/ssl/ca.pem":              "unknown flag: --ca-file",
		"template web ./chart":                               `unknown command "template"`,
		"pull oci://127.0.0.1:9/x":                           `unknown command "pull"`,
		"repo add x https://127.0.0.1:9":                     `unknown command "repo"`,
		"plugin install https://127.0.0.1:9/p":               `unknown command "plugin"`,
		"dependency update ./chart":                          `unknown command "dependency"`,
		"list --kube-token abc":                              "the flag --kube-token is not allowed",
		"list --kube-apiserver=https://127.0.0.1:9":          "the flag --kube-apiserver is not allowed",
		"list --kube-as-user admin":                          "the flag --kube-as-user is not allowed",
		"list --registry-config /root/.config/helm/reg.json": "the flag --registry-config is not allowed",
		"list --repository-config /root/.config/helm/r.yaml": "the flag --repository-config is not allowed",
	} {
		_, err := h.Analyze(t.Context(), strings.Fields(args))
		require.ErrorContains(t, err, msg, args)
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	_, err := New("helm", config.Raw{}, executor.Deps{})
	require.NoError(t, err)
	for yaml, msg := range map[string]string{
		"driver: sql":    `settings.driver: "sql" is not a release storage`,
		"maxHistory: -1": "settings.maxHistory: -1 is negative",
		"cachedir: /tmp": "cachedir",
	} {
		raw := mustRaw(t, yaml)
		_, err := New("helm", raw, executor.Deps{})
		require.ErrorContains(t, err, msg, yaml)
	}
}

func mustRaw(t *testing.T, text string) config.Raw {
	t.Helper()
	raw, err := config.RawFromYAML(text)
	require.NoError(t, err)
	return raw
}
