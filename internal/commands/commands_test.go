package commands

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/state"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/kubectl"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Nodes: 1}) }

const routerConfig = `cluster:
  name: dev
  namespace: kubechat
platforms:
  - name: chat
    type: log
channels:
  - name: readonly
    platform: chat
    bindings:
      executors: [kubectl-read]
    identity:
      serviceAccount: apps/reader
  - name: open
    platform: chat
    bindings:
      executors: [kubectl-all]
    identity:
      user: nobody
executors:
  - name: kubectl-read
    type: kubectl
    policy:
      namespaces: [apps]
      defaultNamespace: apps
  - name: kubectl-all
    type: kubectl
    policy:
      verbs: ["*"]
      confirm: [delete]
sources:
  - name: alerts
    type: alertmanager
    alertmanager:
      bearerToken: ${ROUTER_TEST_TOKEN}
users:
  - platform: chat
    id: U-ADMIN
    admin: true
aliases:
  kgp: kubectl get pods
`

// counting wraps an executor and counts the commands that reach it.
type counting struct {
	executor.Executor
	calls atomic.Int32
}

func (c *counting) Complete(ctx context.Context, id executor.Identity, field string, chosen map[string]string) ([]string, error) {
	return c.Executor.(executor.Builder).Complete(ctx, id, field, chosen)
}

func (c *counting) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	c.calls.Add(1)
	return c.Executor.Execute(ctx, req)
}

type fixture struct {
	r     *Handler
	read  *counting
	all   *counting
	reg   *prometheus.Registry
	state *state.Store
}

var setupDone bool

func newFixture(t testing.TB) *fixture {
	t.Helper()
	testenv.Skip(t, env)
	ctx := context.Background()
	if !setupDone {
		for _, ns := range []string{"apps", "kubechat"} {
			require.NoError(t, env.CreateNamespace(ctx, ns))
		}
		_, err := env.Client.AppsV1().Deployments("apps").Create(ctx, testenv.Deployment("web", nil), metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = env.WaitForPod(ctx, "apps", "app=web", testenv.PodReady)
		require.NoError(t, err)
		_, err = env.Client.CoreV1().Secrets("apps").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
			StringData: map[string]string{"password": "correct-horse-battery"}}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = env.Client.RbacV1().RoleBindings("apps").Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "reader"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "admin"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "apps", Name: "reader"}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		setupDone = true
	}
	t.Setenv("ROUTER_TEST_TOKEN", "am-token-must-not-show")
	cfg, err := config.Parse(config.Known{PlatformTypes: []string{"log"}, ExecutorTypes: []string{"kubectl"}},
		config.File{Name: "router.yaml", Data: []byte(routerConfig)})
	require.NoError(t, err)
	f := &fixture{reg: prometheus.NewRegistry(), state: state.New(env.Client, "kubechat", "kubechat-state")}
	require.NoError(t, f.state.Load(ctx))
	execs := map[string]executor.Executor{}
	for _, e := range cfg.Executors {
		k, err := kubectl.New(e.Name, e.Settings, executor.Deps{RESTConfig: env.Config})
		require.NoError(t, err)
		execs[e.Name] = &counting{Executor: k}
	}
	f.read, f.all = execs["kubectl-read"].(*counting), execs["kubectl-all"].(*counting)
	// The alerting side, for the notifications built-in; it is not started.
	alerts, err := alerting.New(cfg, map[string]chat.Platform{"chat": &posts{}}, alerting.Options{State: f.state}, f.reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	f.r, err = New(cfg, Options{Executors: execs, State: f.state, Alerts: alerts}, f.reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return f
}

func (f *fixture) say(t testing.TB, channel, user, text string) chat.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return f.r.Handle(ctx, chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: channel, ID: channel}, UserID: user, Text: text,
		Thread: chat.MessageRef{ID: "T1"}})
}

func TestGetPodsReply(t *testing.T) {
	f := newFixture(t)
	m := f.say(t, "readonly", "U1", "kubectl get pods")
	text := m.PlainText()
	require.Equal(t, "kubectl get pods", m.Title)
	require.Regexp(t, `(?m)^web-\S+\s+1/1\s+Running`, text)
	require.Contains(t, m.Context, "as system:serviceaccount:apps:reader")
	require.Equal(t, "T1", m.Thread.ID, "replies in the thread of the command")

	m = f.say(t, "readonly", "U1", "kgp | grep -v NAME")
	require.NotContains(t, m.PlainText(), "NAME")
	require.Contains(t, m.PlainText(), "web-")
	require.InDelta(t, 2, testutil.ToFloat64(f.r.metrics.total.WithLabelValues("kubectl-read", "ok")), 0)
}

func TestRunAgainButton(t *testing.T) {
	f := newFixture(t)
	m := f.say(t, "readonly", "U1", "kubectl get pods | grep web")
	last := m.Sections[len(m.Sections)-1]
	require.Len(t, last.Buttons, 1)
	require.Equal(t, "Run again", last.Buttons[0].Label)
	id := last.Buttons[0].ID
	require.NotContains(t, id, "kubectl", "the button carries only an opaque id")

	click := func(channel, id string) chat.Message {
		return f.r.Handle(t.Context(), chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: channel, ID: channel}, UserID: "U2",
			ButtonID: id, Thread: chat.MessageRef{ID: "T1"}})
	}
	again := click("readonly", id)
	require.Equal(t, "kubectl get pods", again.Title)
	require.Contains(t, again.PlainText(), "web-")
	require.NotContains(t, again.PlainText(), "NAME", "the filter is kept")
	require.EqualValues(t, 2, f.read.calls.Load())

	require.Contains(t, click("open", id).PlainText(), "this button belongs to another channel")
	require.Contains(t, click("readonly", "forged").PlainText(), "this button is not valid")
	require.Contains(t, click("readonly", id).PlainText(), "this button was already used", "a replayed click is refused")
	require.EqualValues(t, 2, f.read.calls.Load(), "refused clicks run nothing")
	next := again.Sections[len(again.Sections)-1].Buttons[0].ID
	require.NotEqual(t, id, next, "each result has its own button")
	require.Contains(t, click("readonly", next).PlainText(), "web-")
}

// TestConfirmation: a verb the policy lists under confirm waits for a
// click on Confirm; Cancel voids it, and either button works once.
func TestConfirmation(t *testing.T) {
	f := newFixture(t)
	click := func(channel, user, id string) chat.Message {
		return f.r.Handle(t.Context(), chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: channel, ID: channel}, UserID: user,
			UserName: "ann", ButtonID: id, Thread: chat.MessageRef{ID: "T1"}})
	}
	ask := func() (confirm, cancel string) {
		m := f.say(t, "open", "U1", "kubectl delete configmap nothing -n apps")
		require.Equal(t, "Confirm: kubectl delete configmap nothing -n apps", m.Title)
		require.Equal(t, chat.LevelWarning, m.Level)
		require.Contains(t, m.PlainText(), "It runs as nobody once confirmed")
		b := m.Sections[len(m.Sections)-1].Buttons
		require.Len(t, b, 2)
		require.Equal(t, "Confirm", b[0].Label)
		require.Equal(t, "Cancel", b[1].Label)
		return b[0].ID, b[1].ID
	}
	confirm, cancel := ask()
	require.Zero(t, f.all.calls.Load(), "nothing runs before the click")
	require.Equal(t, "Cancelled: kubectl delete configmap nothing -n apps", click("open", "U2", cancel).Title)
	require.Contains(t, click("open", "U2", confirm).PlainText(), "already used", "Cancel voids Confirm")
	require.Zero(t, f.all.calls.Load())

	confirm, _ = ask()
	require.Contains(t, click("readonly", "U2", confirm).PlainText(), "belongs to another channel")
	m := click("open", "U2", confirm)
	require.Equal(t, "Denied by Kubernetes RBAC", m.Title, "confirmed, it ran as the channel's identity")
	require.EqualValues(t, 1, f.all.calls.Load())
	require.Contains(t, click("open", "U2", confirm).PlainText(), "already used")
	require.EqualValues(t, 1, f.all.calls.Load(), "a replayed Confirm runs nothing")
	require.InDelta(t, 2, testutil.ToFloat64(f.r.metrics.total.WithLabelValues("kubectl-all", "awaiting_confirmation")), 0)
}

func TestCommandBuilder(t *testing.T) {
	f := newFixture(t)
	pick := func(m chat.Message, value string) chat.Message {
		t.Helper()
		sel := m.Sections[0].Selects
		require.Len(t, sel, 1, m.PlainText())
		var values []string
		for _, o := range sel[0].Options {
			values = append(values, o.Value)
		}
		require.Contains(t, values, value)
		return f.r.Handle(t.Context(), chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "readonly", ID: "readonly"}, UserID: "U1",
			ButtonID: sel[0].ID, Value: value, Thread: chat.MessageRef{ID: "T1"}})
	}
	m := f.say(t, "readonly", "U1", "kubectl")
	require.Equal(t, "Build a command", m.Title)
	require.Equal(t, []chat.Option{{Label: "get", Value: "get"}, {Label: "describe", Value: "describe"}, {Label: "logs", Value: "logs"}},
		m.Sections[0].Selects[0].Options, "read-only verbs the policy allows")
	m = pick(m, "get")
	m = pick(m, "deployments.apps") // from API discovery, as the channel's identity
	require.Equal(t, []chat.Option{{Label: "apps", Value: "apps"}}, m.Sections[0].Selects[0].Options, "the policy's namespaces")
	m = pick(m, "apps")
	m = pick(m, "web")
	require.Equal(t, "kubectl get deployments.apps web -n apps", m.Title)
	require.Regexp(t, `(?m)^web\s+1/1`, m.PlainText())

	forged := f.r.Handle(t.Context(), chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "readonly", ID: "readonly"}, UserID: "U1",
		ButtonID: f.say(t, "readonly", "U1", "kubectl").Sections[0].Selects[0].ID, Value: "delete"})
	m = pick(f.say(t, "readonly", "U1", "kubectl"), "get")
	require.Equal(t, "Denied by kubechat policy", forged.Title, "a forged choice is checked")
	bad := f.r.Handle(t.Context(), chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "readonly", ID: "readonly"}, UserID: "U1",
		ButtonID: m.Sections[0].Selects[0].ID, Value: "--as=admin"})
	require.Contains(t, bad.PlainText(), `"--as=admin" is not a valid choice`)
}

func TestPolicyDenialRunsNothing(t *testing.T) {
	f := newFixture(t)
	m := f.say(t, "readonly", "U1", "kubectl delete pod x")
	require.Equal(t, "Denied by kubechat policy", m.Title)
	require.Contains(t, m.PlainText(), `executor "kubectl-read" allows the verbs get, describe, logs`)
	require.Contains(t, m.PlainText(), `"delete" is not one of them`)

	m = f.say(t, "readonly", "U1", "kubectl get pods -n kube-system")
	require.Contains(t, m.PlainText(), `allows the namespaces apps; "kube-system" is not one of them`)
	m = f.say(t, "readonly", "U1", "kubectl logs -f web")
	require.Contains(t, m.PlainText(), "would stream forever")
	require.Zero(t, f.read.calls.Load(), "nothing ran")
	require.InDelta(t, 3, testutil.ToFloat64(f.r.metrics.total.WithLabelValues("kubectl-read", "denied_policy")), 0)
}

func TestRBACDenialSaysKubernetesRefused(t *testing.T) {
	f := newFixture(t)
	m := f.say(t, "open", "U1", "kubectl get pods -n apps")
	require.Equal(t, "Denied by Kubernetes RBAC", m.Title)
	require.Contains(t, m.PlainText(), "kubechat's policy allowed this, but Kubernetes refused it for nobody")
	require.Contains(t, m.PlainText(), `User "nobody" cannot list resource "pods"`)
	require.EqualValues(t, 1, f.all.calls.Load())
}

func TestInjectionCorpusRunsNothing(t *testing.T) {
	f := newFixture(t)
	for _, in := range injectionCorpus {
		m := f.say(t, "open", "U1", in)
		require.Equal(t, chat.LevelError, m.Level, in)
	}
	require.GreaterOrEqual(t, len(injectionCorpus), 30)
	require.Zero(t, f.all.calls.Load()+f.read.calls.Load(), "no injection reached an executor")
}

func TestSecretNeverShown(t *testing.T) {
	f := newFixture(t)
	for _, cmd := range []string{"kubectl get secret db -o yaml", "kubectl get secret db -o json", "kubectl describe secret db",
		"kubectl get secrets -o jsonpath={.items[*].data.password}"} {
		text := f.say(t, "readonly", "U1", cmd).PlainText()
		require.NotContains(t, text, "correct-horse-battery", cmd)
		require.NotContains(t, text, "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5", cmd)
	}
	require.Contains(t, f.say(t, "readonly", "U1", "kubectl get secret db -o yaml").PlainText(), "password: ***")
}

func TestBuiltins(t *testing.T) {
	f := newFixture(t)
	require.Regexp(t, `^pong from cluster dev \(kubechat \S+\)$`, f.say(t, "readonly", "U1", "ping").Title)
	help := f.say(t, "readonly", "U1", "help").PlainText()
	require.Contains(t, help, "kubectl (kubectl-read): get, describe, logs")
	require.Contains(t, help, "namespaces apps")
	require.Contains(t, f.say(t, "readonly", "U1", "list aliases").PlainText(), "kgp → kubectl get pods")
	require.Contains(t, f.say(t, "readonly", "U1", "list executors").PlainText(), "kubectl-all (type kubectl)")
	require.Contains(t, f.say(t, "readonly", "U1", "list things").PlainText(), `cannot list "things"`)
	require.Contains(t, f.say(t, "readonly", "U1", "status").PlainText(), "Cluster: dev")

	// Admin only, and persisted in the state ConfigMap.
	require.Contains(t, f.say(t, "readonly", "U1", "notifications off").PlainText(), "admin command")
	require.Equal(t, "Notifications are on in this channel", f.say(t, "readonly", "U1", "notifications status").Title)
	require.Equal(t, "Notifications are now off in this channel", f.say(t, "readonly", "U-ADMIN", "notifications off").Title)
	restarted := newFixture(t)
	require.Equal(t, "Notifications are off in this channel", restarted.say(t, "readonly", "U1", "notifications status").Title)
	require.Equal(t, "Notifications are now on in this channel", restarted.say(t, "readonly", "U-ADMIN", "notifications on").Title)

	require.Equal(t, "Denied by kubechat policy", f.say(t, "readonly", "U1", "show config").Title)
	shown := f.say(t, "readonly", "U-ADMIN", "show config").PlainText()
	require.Contains(t, shown, "kubectl-read")
	require.Contains(t, shown, "bearerToken: '***'")
	require.NotContains(t, shown, "am-token-must-not-show")

	require.Equal(t, chat.Message{}, f.say(t, "readonly", "U1", "--cluster prod ping"), "another cluster's command gets no reply here")
	require.Contains(t, f.say(t, "readonly", "U1", "--cluster dev ping").Title, "pong from cluster dev")
	unknown := f.say(t, "readonly", "U1", "helm list")
	require.Equal(t, "Unknown command", unknown.Title)
	require.Contains(t, unknown.PlainText(), "it may run: actions, help, list, notifications, ping, show, status, kubectl")
}

// TestNotificationsOffSilencesAlerts: an admin switches a channel's alerts
// off from chat; an event then reaches nothing, which a sentinel sent after
// the switch is back on proves (it arrives alone).
func TestNotificationsOffSilencesAlerts(t *testing.T) {
	a := newAlerting(t)
	require.Contains(t, a.say(t, "ops", "U1", "notifications off").PlainText(), "admin command")
	require.Equal(t, "Notifications are now off in this channel", a.say(t, "ops", "U-ADMIN", "notifications off").Title)
	require.Equal(t, "Notifications are off in this channel", a.say(t, "ops", "U1", "notifications status").Title)
	a.alerts.Emit(t.Context(), crashLoop("silenced"))
	require.Equal(t, "Notifications are now on in this channel", a.say(t, "ops", "U-ADMIN", "notifications on").Title)
	a.alerts.Emit(t.Context(), crashLoop("sentinel"))
	a.out.wait(t, "ops", func(p posted) bool { return strings.Contains(p.m.Title, "sentinel is failing") })
	for _, p := range a.out.all() {
		require.NotContains(t, p.m.Title, "silenced", "nothing reaches a channel whose notifications are off")
	}
}

// BenchmarkGetPods measures a "kubectl get pods" round trip: parse, policy,
// in-process kubectl as an impersonated identity against the real API
// server, and rendering. It reports p50 and p99 besides the mean.
func BenchmarkGetPods(b *testing.B) {
	f := newFixture(b)
	var durations []time.Duration
	for b.Loop() {
		start := time.Now()
		m := f.say(b, "readonly", "U1", "kubectl get pods")
		durations = append(durations, time.Since(start))
		if !strings.Contains(m.PlainText(), "Running") {
			b.Fatalf("unexpected reply: %s", m.PlainText())
		}
	}
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	pct := func(p float64) float64 {
		return float64(durations[min(len(durations)-1, int(p*float64(len(durations))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// injectionCorpus is the command package's corpus, through the whole router.
var injectionCorpus = slices.Clone([]string{
	"kubectl get pods; id", "kubectl get pods;id", "kubectl get pods && id", "kubectl get pods || id",
	"kubectl get pods | sh", "kubectl get pods | bash -c id", "kubectl get pods |sh", "kubectl get pods `id`",
	"kubectl get pods $(id)", "kubectl get pods \"$(id)\"", "kubectl get pods \"`id`\"", "kubectl get pods ${IFS}id",
	"kubectl get pods > /etc/passwd", "kubectl get pods >> /tmp/x", "kubectl get pods < /etc/passwd",
	"kubectl get pods << EOF", "kubectl get pods 2> /dev/null", "kubectl get pods &> /dev/null", "kubectl get pods & id",
	"kubectl get pods &", "kubectl get pods\u201d; id", "kubectl get pods | grep x | sh", "kubectl get pods | grep x; id",
	"kubectl get pods | grep $(id)", "kubectl exec -it x -- sh -c 'id'", "kubectl get pods\n; id",
	"kubectl get pods\t&&\tid", "ping; kubectl delete ns prod", "--cluster dev;id kubectl get pods",
	"kubectl get pods --as system:admin", "kubectl get pods --kubeconfig /etc/kubernetes/admin.conf",
	"kubectl get pods --server https://evil.example", "kubectl --token x get pods", "kubectl debug node/x -it --image busybox",
})

// TestRunAgainKeepsArgv: "Run again" runs exactly the argv of the command,
// even an argument holding both kinds of quote, which no re-quoting of the
// command's text could give back.
func TestRunAgainKeepsArgv(t *testing.T) {
	f := newFixture(t)
	m := f.say(t, "readonly", "U1", `kubectl get pods -o go-template='{{printf "%s" "it"}}'"'s"`)
	require.Contains(t, m.PlainText(), "it's", m.PlainText())
	id := m.Sections[len(m.Sections)-1].Buttons[0].ID
	again := f.r.Handle(t.Context(), chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "readonly", ID: "readonly"}, UserID: "U2",
		ButtonID: id, Thread: chat.MessageRef{ID: "T1"}})
	require.Equal(t, m.Title, again.Title)
	require.Contains(t, again.PlainText(), "it's", again.PlainText())
}
