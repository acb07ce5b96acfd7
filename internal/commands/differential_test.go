package commands

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/kubectl"
)

const diffNS = "diff"

const diffConfig = `cluster:
  name: dev
  namespace: kubechat
platforms:
  - name: chat
    type: log
channels:
  - name: diff
    platform: chat
    bindings:
      executors: [kubectl]
    identity:
      user: differ
      groups: [differs]
executors:
  - name: kubectl
    type: kubectl
    policy:
      namespaces: ["*"]
      defaultNamespace: ` + diffNS + `
      timeout: 60s
      maxOutputBytes: 4194304
`

// ages are kubectl's relative times ("5s", "2m3s", "10d"), which tick
// between two runs of the same command.
var ages = regexp.MustCompile(`\b\d+[smhdy](\d+[smh])?\b`)

func normalise(s string) string { return ages.ReplaceAllString(s, "AGE") }

// TestChatPrintsWhatKubectlPrints: read commands typed in chat print
// exactly what the kubectl binary of the same version prints for the same
// identity, warnings, informational lines and partial output included
// (ages normalised).
func TestChatPrintsWhatKubectlPrints(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	setupDiff(t)
	cfg, err := config.Parse(config.Known{PlatformTypes: []string{"log"}, ExecutorTypes: []string{"kubectl"}},
		config.File{Name: "diff.yaml", Data: []byte(diffConfig)})
	require.NoError(t, err)
	k, err := kubectl.New("kubectl", config.Raw{}, executor.Deps{RESTConfig: env.Config})
	require.NoError(t, err)
	r, err := New(cfg, Options{Executors: map[string]executor.Executor{"kubectl": k}},
		prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	pods, err := env.Client.CoreV1().Pods(diffNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	require.NoError(t, err)
	require.Len(t, pods.Items, 2)
	web := pods.Items[0].Name
	node := env.Nodes[0]
	commands := []string{
		"get pods", "get pods -o wide", "get pods -o yaml", "get pods -o json", "get pods -o name", "get pods --show-labels",
		"get pods -l app=web", "get pods -L app", "get pods --sort-by=.metadata.name", "get pods --no-headers",
		"get pods -o jsonpath={.items[*].metadata.name}", "get pods -o custom-columns=NAME:.metadata.name,NODE:.spec.nodeName",
		"get pods -o go-template='{{range .items}}{{.metadata.name}} {{.status.phase}}{{\"\\n\"}}{{end}}'",
		"get pod " + web, "get pod/" + web + " -o yaml", "get pods nothing-here", "get pods -A", "get pods --all-namespaces -o wide",
		"get deployments", "get deploy -o wide", "get deploy web -o yaml", "get deploy,svc,cm", "get rs", "get svc", "get svc web -o json",
		"get cm", "get cm settings -o yaml", "get sa", "get endpoints", "get endpointslices", "get all", "get nodes", "get nodes -o wide",
		"get ns", "get namespaces " + diffNS + " -o yaml", "get secrets", "get pods,secrets", "get componentstatuses",
		"get events --field-selector type=Normal -o name", "get limitranges", "get pdb",
		"describe pod " + web, "describe deploy web", "describe svc web", "describe cm settings", "describe node " + node,
		"describe ns " + diffNS, "describe rs", "describe sa default", "describe pods -l app=multi",
		"logs " + web, "logs multi", "logs multi -c sidecar", "logs deploy/web", "logs multi --tail 1", "logs -l app=web", "logs -l app=web --prefix",
		"logs multi --all-containers",
		"explain pods", "explain pods.spec.containers.image", "explain deploy.spec.strategy",
		"api-resources", "api-resources --namespaced=false", "api-resources -o name", "api-resources --api-group=apps", "api-versions",
		"auth can-i list pods", "auth can-i delete pods", "auth can-i get secrets -n " + diffNS, "auth whoami",
		"top pod", "events --types=Warning", "rollout status deploy/web", "rollout history deploy/web", "cluster-info", "version",
	}
	require.GreaterOrEqual(t, len(commands), 60)
	for _, text := range commands {
		t.Run(text, func(t *testing.T) {
			words, err := command.Split(text)
			require.NoError(t, err)
			var got, want []string
			for range 3 {
				m := r.Handle(ctx, chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "diff", ID: "diff"}, UserID: "U1",
					Text: "kubectl " + text, Thread: chat.MessageRef{ID: "T"}})
				got = codeSections(m)
				stdout, stderr := realKubectl(t, append([]string{"-n", diffNS}, words...)...)
				want = nil
				for _, s := range []string{stdout, stderr} {
					if s != "" {
						want = append(want, normalise(s))
					}
				}
				if unordered[text] {
					// kubectl prints each container's logs in map order.
					got, want = sortedLines(got), sortedLines(want)
				}
				if strings.Join(got, "\x00") == strings.Join(want, "\x00") {
					break
				}
			}
			require.Equal(t, want, got)
			if mark, ok := marks[text]; ok {
				require.Contains(t, strings.Join(got, "\n"), mark, "the case shows what it is here for")
			}
		})
	}
}

// unordered are the cases whose output kubectl itself prints in a random
// order: they are compared line by line, whatever the order.
var unordered = map[string]bool{"logs multi --all-containers": true}

// sortedLines returns each section with its lines sorted.
func sortedLines(sections []string) []string {
	out := make([]string, len(sections))
	for i, s := range sections {
		lines := strings.Split(s, "\n")
		slices.Sort(lines)
		out[i] = strings.Join(lines, "\n")
	}
	return out
}

// marks are what some cases are in the list for: warnings, informational
// lines, partial output beside a refusal.
var marks = map[string]string{
	"get endpoints":          "Warning: v1 Endpoints is deprecated",
	"logs multi":             `Defaulted container "app" out of: app, sidecar`,
	"logs deploy/web":        "Found 2 pods, using pod/web-",
	"get pods,secrets":       `cannot list resource "secrets"`,
	"auth can-i delete pods": "no",
	"get pods nothing-here":  `pods "nothing-here" not found`,
}

// codeSections are a reply's output and errors, as kubectl printed them.
func codeSections(m chat.Message) []string {
	var out []string
	for _, s := range m.Sections {
		if s.Code != "" {
			out = append(out, normalise(s.Code))
		}
	}
	return out
}

// realKubectl runs the kubectl binary as the chat channel's identity.
func realKubectl(t *testing.T, args ...string) (string, string) {
	t.Helper()
	bin, err := testenv.BinDir()
	require.NoError(t, err)
	full := append([]string{"--kubeconfig", env.Kubeconfig(), "--as", "differ", "--as-group", "differs", "--as-group", "system:authenticated"}, args...)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	return out.String(), errb.String()
}

var diffSetup bool

// setupDiff creates what the commands read: a Deployment with two pods, a
// pod with two containers, a Service, a ConfigMap, logs (served by kwok),
// and the identity's rights (view, plus reading nodes and namespaces; no
// Secrets, so that a Secret command is refused by RBAC, as kubectl shows).
func setupDiff(t *testing.T) {
	t.Helper()
	if diffSetup {
		return
	}
	ctx := context.Background()
	require.NoError(t, env.CreateNamespace(ctx, diffNS))
	c := env.Client
	d := testenv.Deployment("web", nil)
	two := int32(2)
	d.Spec.Replicas = &two
	_, err := c.AppsV1().Deployments(diffNS).Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	multi := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "multi", Labels: map[string]string{"app": "multi"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}, {Name: "sidecar", Image: "busybox"}}}}
	_, err = c.CoreV1().Pods(diffNS).Create(ctx, multi, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = env.WaitForPod(ctx, diffNS, "app=multi", testenv.PodReady)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		l, err := c.CoreV1().Pods(diffNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		ready := 0
		for _, p := range l.Items {
			if testenv.PodReady(p) {
				ready++
			}
		}
		return err == nil && ready == 2
	}, time.Minute, 100*time.Millisecond)
	l, err := c.CoreV1().Pods(diffNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	require.NoError(t, err)
	for i, p := range l.Items {
		require.NoError(t, env.SetPodLogs(ctx, diffNS, p.Name, p.Spec.Containers[0].Name, "web log line "+string(rune('a'+i))+"\nsecond line\n", ""))
	}
	require.NoError(t, env.SetPodLogs(ctx, diffNS, "multi", "app", "app says hello\nand more\n", ""))
	require.NoError(t, env.SetPodLogs(ctx, diffNS, "multi", "sidecar", "sidecar says hi\n", ""))
	_, err = c.CoreV1().Services(diffNS).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.CoreV1().ConfigMaps(diffNS).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"},
		Data: map[string]string{"mode": "fast"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.CoreV1().Secrets(diffNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": "never-printed"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, env.BindGroupToClusterRole(ctx, "differs", "view"))
	_, err = c.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "differ-cluster"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes", "namespaces"}, Verbs: []string{"get", "list"}}}},
		metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "differ-cluster"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "differ-cluster"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "differs"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	diffSetup = true
}
