//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/podrun"
	"github.com/kubechat/kubechat/internal/podrun/podruntest"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/helm/helmtest"
)

const podImage = "registry.example/kubechat:e2e"

func podConfig(apiURL, ns string) string {
	return agentBase(ns) + slackPlatform(apiURL) + fmt.Sprintf(`channels:
  - name: inproc
    platform: ops-slack
    isolation: inProcess
    bindings:
      executors: [kubectl]
    identity:
      serviceAccount: %[1]s-cmd/reader
  - name: isolated
    platform: ops-slack
    bindings:
      executors: [kubectl]
    identity:
      serviceAccount: %[1]s-cmd/reader
  - name: jobs
    platform: ops-slack
    bindings:
      executors: [run]
    identity:
      serviceAccount: %[1]s-cmd/reader
executors:
  - name: kubectl
    type: kubectl
    isolation: pod
    pod:
      image: %[2]s
    policy:
      namespaces: ["*"]
      defaultNamespace: %[1]s
      timeout: 1m
  - name: run
    type: run
    policy:
      timeout: 1m
    settings:
      templates:
        - name: probe
          image: registry.example/tools:1
          command: [echo, probe, "{{target}}"]
          parameters:
            - name: target
              required: true
              pattern: '[a-z0-9.-]+'
        - name: slow
          image: registry.example/tools:1
          command: [sleep, "3600"]
          deadline: 2s
`, ns, podImage)
}

var codeBlock = regexp.MustCompile("(?s)```\n(.*?)\n```")

// replyCode is the first code block of the reply in channel to the mention ts.
func replyCode(t *testing.T, srv *slacktest.Server, channel, ts, want string) string {
	t.Helper()
	m := waitSlack(t, srv, channel, "the reply in #"+channel, func(m slacktest.Message) bool {
		return m.ThreadTS == ts && strings.Contains(slackText(m), want)
	})
	c := codeBlock.FindStringSubmatch(slackText(m))
	require.NotNil(t, c, "a code block in %s", slackText(m))
	return c[1]
}

// TestPodIsolation: the same kubectl command answered in-process and in a
// command pod gives the same output; run templates run in pods; a bad
// template parameter is refused before any pod is created; a template
// past its deadline says so; no command pod is left, and a leftover from
// an earlier agent is deleted when the agent starts.
func TestPodIsolation(t *testing.T) {
	ctx := t.Context()
	const ns = "pod-e2e"
	cmdNS := ns + "-cmd"
	for _, n := range []string{ns, cmdNS} {
		require.NoError(t, env.CreateNamespace(ctx, n))
	}
	_, err := env.ServiceAccountConfig(ctx, cmdNS, "reader")
	require.NoError(t, err)
	require.NoError(t, env.BindGroupToClusterRole(ctx, "system:serviceaccounts:"+cmdNS, "view"))
	_, err = env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("web", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = env.WaitForPod(ctx, ns, "app=web", testenv.PodReady)
	require.NoError(t, err)

	kubelet, err := podruntest.Start(ctx, env, podruntest.Options{Images: map[string]string{podImage: kubechat}})
	require.NoError(t, err)
	t.Cleanup(kubelet.Stop)

	// A command pod an earlier agent of this cluster left behind.
	leftover, err := podrun.New(env.Client, "e2e", nil).Pod(podrun.Spec{Namespace: cmdNS, ServiceAccount: "reader",
		Executor: "kubectl", Image: "registry.example/gone:1", Deadline: time.Hour})
	require.NoError(t, err)
	leftover, err = env.Client.CoreV1().Pods(cmdNS).Create(ctx, leftover, metav1.CreateOptions{})
	require.NoError(t, err)

	srv := startSlack(t)
	for _, ch := range []string{"inproc", "isolated", "jobs"} {
		srv.AddChannel(ch)
	}
	a := startAgent(t, podConfig(srv.APIURL(), ns))
	waitReady(t, a)
	waitConnected(t, srv, 1)
	eventually(t, 30*time.Second, "the leftover pod deleted", func() error {
		_, err := env.Client.CoreV1().Pods(cmdNS).Get(ctx, leftover.Name, metav1.GetOptions{})
		if err == nil {
			return fmt.Errorf("pod %s still exists", leftover.Name)
		}
		return nil
	})
	require.Contains(t, a.logs(), "deleted a leftover command pod")

	noCommandPods := func() {
		t.Helper()
		pods, err := env.Client.CoreV1().Pods(cmdNS).List(ctx, metav1.ListOptions{LabelSelector: podrun.LabelCommand + "=true"})
		require.NoError(t, err)
		require.Empty(t, pods.Items, "command pods left behind")
	}

	// The same command, in-process and in a pod.
	ts, _, err := srv.Mention(srv.ChannelID("inproc"), "UALICE01", "kubectl get pods")
	require.NoError(t, err)
	local := replyCode(t, srv, "inproc", ts, "web-")
	started := kubelet.Started()
	ts, _, err = srv.Mention(srv.ChannelID("isolated"), "UALICE01", "kubectl get pods")
	require.NoError(t, err)
	inPod := replyCode(t, srv, "isolated", ts, "web-")
	require.Equal(t, started+1, kubelet.Started(), "the command ran in a pod")
	require.Equal(t, age.ReplaceAllString(local, "AGE"), age.ReplaceAllString(inPod, "AGE"))
	noCommandPods()

	// A template runs in a pod, its argument passed as one argv element.
	ts, _, err = srv.Mention(srv.ChannelID("jobs"), "UALICE01", "run probe target=db.internal")
	require.NoError(t, err)
	require.Equal(t, "probe db.internal", replyCode(t, srv, "jobs", ts, "probe db.internal"))
	noCommandPods()

	// A bad parameter is refused, and no pod is created: watch every pod of
	// the namespace from before the command until a fence pod created after
	// the reply; the watch is ordered, so a command pod would come first.
	list, err := env.Client.CoreV1().Pods(cmdNS).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	w, err := env.Client.CoreV1().Pods(cmdNS).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	require.NoError(t, err)
	defer w.Stop()
	started = kubelet.Started()
	ts, _, err = srv.Mention(srv.ChannelID("jobs"), "UALICE01", "run probe target=DB.internal")
	require.NoError(t, err)
	waitSlack(t, srv, "jobs", "the refusal", func(m slacktest.Message) bool {
		return m.ThreadTS == ts && strings.Contains(slackText(m), `template "probe": parameter "target": "DB.internal" does not match the pattern [a-z0-9.-]+`)
	})
	fence, err := env.Client.CoreV1().Pods(cmdNS).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "fence-"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.example/fence:1"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	for ev := range w.ResultChan() {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok || ev.Type != watch.Added {
			continue
		}
		if p.Name == fence.Name {
			break
		}
		t.Fatalf("a pod was created for a refused command: %s %v", p.Name, p.Labels)
	}
	require.Equal(t, started, kubelet.Started())

	// A template past its deadline is reported as such, and cleaned up.
	ts, _, err = srv.Mention(srv.ChannelID("jobs"), "UALICE01", "run slow")
	require.NoError(t, err)
	waitSlack(t, srv, "jobs", "the deadline report", func(m slacktest.Message) bool {
		return m.ThreadTS == ts && strings.Contains(slackText(m), "ran past its deadline of 2s and was killed (DeadlineExceeded)")
	})
	noCommandPods()
}

// age matches kubectl's AGE column values, which differ between two runs.
var age = regexp.MustCompile(`\b\d+(s|m\d*s?|h\d*m?|d\d*h?)\b`)

// TestChartRunsCommandPods installs the chart with pod isolation and runs
// the agent as the chart's ServiceAccount with the rendered config (kwok
// runs no containers): a command runs in a pod with exactly the chart's
// RBAC, and that RBAC reaches no further than the command pods' namespace.
func TestChartRunsCommandPods(t *testing.T) {
	ctx := t.Context()
	const ns, apps, cmdNS = "chart-pods", "chart-pods-apps", "chart-pods-cmd"
	for _, n := range []string{ns, apps, cmdNS} {
		require.NoError(t, env.CreateNamespace(ctx, n))
	}
	_, err := env.ServiceAccountConfig(ctx, cmdNS, "reader")
	require.NoError(t, err)
	require.NoError(t, env.BindGroupToClusterRole(ctx, "system:serviceaccounts:"+cmdNS, "view"))
	_, err = env.Client.AppsV1().Deployments(apps).Create(ctx, testenv.Deployment("web", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = env.WaitForPod(ctx, apps, "app=web", testenv.PodReady)
	require.NoError(t, err)
	kubelet, err := podruntest.Start(ctx, env, podruntest.Options{Images: map[string]string{podImage: kubechat}})
	require.NoError(t, err)
	t.Cleanup(kubelet.Stop)

	srv := startSlack(t)
	vals := map[string]any{}
	require.NoError(t, yaml.Unmarshal([]byte(fmt.Sprintf(`
image: {repository: kubechat, tag: e2e}
replicaCount: 1
config:
  cluster: {name: e2e}
  platforms:
    - name: ops-slack
      type: slack
      settings: {botToken: "${E2E_SLACK_BOT_TOKEN}", appToken: "${E2E_SLACK_APP_TOKEN}", apiURL: %q}
  channels:
    - name: general
      platform: ops-slack
      bindings: {executors: [kubectl]}
      identity: {serviceAccount: %s/reader}
  executors:
    - name: kubectl
      type: kubectl
      isolation: pod
      policy: {namespaces: ["*"], defaultNamespace: %s}
`, srv.APIURL(), cmdNS, apps)), &vals))
	require.NoError(t, helmtest.Install(ctx, env.Config, ns, "kubechat-pods", "../helm/kubechat", vals))
	d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "kubechat-pods", metav1.GetOptions{})
	require.NoError(t, err)
	require.Contains(t, d.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "KUBECHAT_IMAGE", Value: "kubechat:e2e"})

	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "kubechat-pods-config", metav1.GetOptions{})
	require.NoError(t, err)
	dir := t.TempDir()
	chartCfg, local := filepath.Join(dir, "chart.yaml"), filepath.Join(dir, "local.yaml")
	require.NoError(t, os.WriteFile(chartCfg, []byte(cm.Data["kubechat.yaml"]), 0o600))
	require.NoError(t, os.WriteFile(local, []byte("log: {format: text}\nhttp: {listen: 127.0.0.1:0}\n"), 0o600))
	saCfg, err := env.ServiceAccountConfig(ctx, ns, "kubechat-pods")
	require.NoError(t, err)
	kubeconfig := filepath.Join(dir, "sa.kubeconfig")
	require.NoError(t, testenv.WriteKubeconfig(saCfg, kubeconfig))
	setChartEnv(t, ns, "kubechat-pods")
	// The image the chart sets; here, the one the test kubelet knows.
	t.Setenv("KUBECHAT_IMAGE", podImage)
	a := startAgentArgs(t, "run", "--config", chartCfg, "--config", local, "--kubeconfig", kubeconfig)
	waitReady(t, a)
	waitConnected(t, srv, 1)

	started := kubelet.Started()
	ts, _, err := srv.Mention(srv.ChannelID("general"), "UALICE01", "kubectl get pods")
	require.NoError(t, err)
	replyCode(t, srv, "general", ts, "web-")
	require.Equal(t, started+1, kubelet.Started(), "the command ran in a pod")

	sa := "system:serviceaccount:" + ns + ":kubechat-pods"
	can := func(attrs authorizationv1.ResourceAttributes) bool {
		t.Helper()
		r, err := env.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns},
				ResourceAttributes: &attrs}}, metav1.CreateOptions{})
		require.NoError(t, err)
		return r.Status.Allowed
	}
	for _, verb := range []string{"create", "get", "list", "watch", "delete"} {
		require.True(t, can(authorizationv1.ResourceAttributes{Verb: verb, Resource: "pods", Namespace: cmdNS}), verb)
	}
	// (list and watch on pods everywhere come from the chart's default source.)
	for _, verb := range []string{"create", "get", "delete"} {
		require.False(t, can(authorizationv1.ResourceAttributes{Verb: verb, Resource: "pods", Namespace: apps}), verb+" outside the command pods' namespace")
	}
	require.True(t, can(authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Subresource: "log", Namespace: cmdNS}))
	require.False(t, can(authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Subresource: "exec", Namespace: cmdNS}))
	require.False(t, can(authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: cmdNS}))
	require.False(t, can(authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "serviceaccounts", Namespace: cmdNS, Name: "reader"}),
		"commands run as the pod's own ServiceAccount: the agent impersonates no one")
}
