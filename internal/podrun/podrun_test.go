package podrun_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/cli"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/podrun"
	"github.com/kubechat/kubechat/internal/podrun/podruntest"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/helm"
	"github.com/kubechat/kubechat/plugins/kubectl"
)

const image = "registry.example/kubechat:test"

var env *testenv.Env

// selfExec makes the test binary play the kubechat image: run as
// "<test binary> exec ..." with it set, it is "kubechat exec" (the same
// command line the kubechat binary runs), which spares a build of the binary.
const selfExec = "KUBECHAT_PODRUN_TEST_EXEC"

func TestMain(m *testing.M) {
	if os.Getenv(selfExec) == "1" && len(os.Args) > 1 && os.Args[1] == "exec" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	images[image] = self
	testenv.Main(m, &env, testenv.Options{Nodes: 1})
}

var images = map[string]string{}

// start runs the stand-in kubelet for one test.
func start(t *testing.T) *podruntest.Kubelet {
	t.Helper()
	testenv.Skip(t, env)
	k, err := podruntest.Start(t.Context(), env, podruntest.Options{Images: images, Env: map[string]string{selfExec: "1"}})
	require.NoError(t, err)
	t.Cleanup(k.Stop)
	return k
}

// namespace creates ns with a running pod to look at, and the namespace
// ns-cmd, where command pods run, with a ServiceAccount "reader" that may
// read everything but Secrets (view).
func namespace(t *testing.T, ns string) executor.Identity {
	t.Helper()
	ctx := t.Context()
	cmdNS := ns + "-cmd"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	require.NoError(t, env.CreateNamespace(ctx, cmdNS))
	_, err := env.ServiceAccountConfig(ctx, cmdNS, "reader")
	require.NoError(t, err)
	require.NoError(t, env.BindGroupToClusterRole(ctx, "system:serviceaccounts:"+cmdNS, "view"))
	_, err = env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment("web", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = env.WaitForPod(ctx, ns, "app=web", testenv.PodReady)
	require.NoError(t, err)
	return executor.Identity{User: "system:serviceaccount:" + cmdNS + ":reader",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + cmdNS, "system:authenticated"}}
}

func kubectlExecutor(t *testing.T) executor.Executor {
	t.Helper()
	ex, err := kubectl.New("kubectl", config.Raw{}, executor.Deps{RESTConfig: env.Config})
	require.NoError(t, err)
	return ex
}

func wrapped(t *testing.T, pod config.PodSettings) (executor.Executor, *podrun.Runner) {
	t.Helper()
	runner := podrun.New(env.Client, "test", nil)
	pod.Image = image
	w, err := podrun.Wrap(kubectlExecutor(t), runner, podrun.Options{Type: "kubectl", Pod: pod.WithDefaults()})
	require.NoError(t, err)
	return w, runner
}

// noCommandPods asserts that no command pod is left for ns (in ns-cmd).
func noCommandPods(t *testing.T, ns string) {
	t.Helper()
	pods, err := env.Client.CoreV1().Pods(ns+"-cmd").List(context.Background(), metav1.ListOptions{LabelSelector: podrun.LabelCommand + "=true"})
	require.NoError(t, err)
	require.Empty(t, pods.Items, "command pods left behind")
}

var age = regexp.MustCompile(`\b\d+(s|m\d*s?|h\d*m?)\b`)

func TestSameOutputAsInProcess(t *testing.T) {
	k := start(t)
	const ns = "podrun-same"
	id := namespace(t, ns)
	req := executor.Request{Args: []string{"get", "pods"}, Namespace: ns, Identity: id, MaxOutputBytes: 1 << 20}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	local, err := kubectlExecutor(t).Execute(ctx, req)
	require.NoError(t, err)
	require.Equal(t, 0, local.ExitCode, local.Errors)
	require.Contains(t, local.Output, "web-")

	w, _ := wrapped(t, config.PodSettings{})
	reg := prometheus.NewRegistry()
	require.NoError(t, podrun.RegisterMetrics(reg))
	phasesBefore := phaseCounts(t, reg)
	before := k.Started()
	inPod, err := w.Execute(ctx, req)
	require.NoError(t, err)
	require.Equal(t, before+1, k.Started(), "the command ran in a pod")
	for _, ph := range []string{"create", "schedule", "start", "run", "collect"} {
		require.Equal(t, phasesBefore[ph]+1, phaseCounts(t, reg)[ph], "the pod's %s phase was timed", ph)
	}
	require.Equal(t, 0, inPod.ExitCode, inPod.Errors)
	require.Equal(t, age.ReplaceAllString(local.Output, "AGE"), age.ReplaceAllString(inPod.Output, "AGE"))
	noCommandPods(t, ns)

	// RBAC is the pod's own: the reader may not read Secrets.
	req.Args = []string{"get", "secrets"}
	denied, err := w.Execute(ctx, req)
	require.NoError(t, err)
	require.True(t, denied.Forbidden, "%+v", denied)
	require.Contains(t, denied.Errors, "system:serviceaccount:"+ns+"-cmd:reader")
	noCommandPods(t, ns)

	// The agent's connection flags stay refused inside the pod, too.
	req.Args = []string{"get", "pods", "--token", "x"}
	refused, err := w.Execute(ctx, req)
	require.NoError(t, err)
	require.Equal(t, 1, refused.ExitCode)
	require.Contains(t, refused.Errors, "the flag --token is not allowed")
	noCommandPods(t, ns)
}

func TestDeadlineExceeded(t *testing.T) {
	start(t)
	const ns = "podrun-deadline"
	id := namespace(t, ns)
	pod, err := env.WaitForPod(t.Context(), ns, "app=web", testenv.PodReady)
	require.NoError(t, err)
	w, _ := wrapped(t, config.PodSettings{Deadline: config.Duration(2 * time.Second)})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// Waits for a deletion that never comes.
	res, err := w.Execute(ctx, executor.Request{Args: []string{"wait", "--for=delete", "pod/" + pod.Name, "--timeout=1h"}, Namespace: ns, Identity: id})
	require.NoError(t, err)
	require.NotEqual(t, 0, res.ExitCode)
	require.Contains(t, res.Errors, "ran past its deadline of 2s and was killed (DeadlineExceeded)")
	require.False(t, res.Forbidden)
	noCommandPods(t, ns)
}

func TestOOMKilled(t *testing.T) {
	start(t)
	const ns = "podrun-oom"
	id := namespace(t, ns)
	w, _ := wrapped(t, config.PodSettings{Resources: config.PodResources{
		Requests: config.ResourceList{Memory: "8Mi"}, Limits: config.ResourceList{Memory: "8Mi"},
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	res, err := w.Execute(ctx, executor.Request{Args: []string{"get", "pods"}, Namespace: ns, Identity: id})
	require.NoError(t, err)
	require.Equal(t, 137, res.ExitCode)
	require.Contains(t, res.Errors, "went over its memory limit of 8Mi and was killed (OOMKilled)")
	noCommandPods(t, ns)
}

func TestRefusedBeforeAnyPod(t *testing.T) {
	k := start(t)
	const ns = "podrun-refused"
	namespace(t, ns)
	w, _ := wrapped(t, config.PodSettings{})
	before := k.Started()
	_, err := w.Execute(t.Context(), executor.Request{Args: []string{"get", "pods"}, Namespace: ns,
		Identity: executor.Identity{User: "alice", Groups: []string{"system:authenticated"}}})
	require.ErrorIs(t, err, executor.ErrDenied)
	require.Contains(t, err.Error(), "commands in pods run as a ServiceAccount, and alice is not one")
	require.Equal(t, before, k.Started())
	noCommandPods(t, ns)
}

func TestImageThatCannotStart(t *testing.T) {
	start(t)
	const ns = "podrun-image"
	id := namespace(t, ns)
	runner := podrun.New(env.Client, "test", nil)
	w, err := podrun.Wrap(kubectlExecutor(t), runner, podrun.Options{Type: "kubectl", Pod: config.PodSettings{Image: "registry.example/missing:1"}.WithDefaults()})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	_, err = w.Execute(ctx, executor.Request{Args: []string{"get", "pods"}, Namespace: ns, Identity: id})
	var se *podrun.StartError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "ImagePullBackOff", se.Reason)
	noCommandPods(t, ns)
}

func TestCleanupLeftovers(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	const ns = "podrun-cleanup"
	namespace(t, ns)
	dead := podrun.New(env.Client, "test", nil)   // an agent that died mid-command
	other := podrun.New(env.Client, "other", nil) // another cluster's agent
	agent := podrun.New(env.Client, "test", nil)  // this agent, after a restart
	create := func(r *podrun.Runner) string {
		p, err := r.Pod(podrun.Spec{Namespace: ns + "-cmd", ServiceAccount: "reader", Executor: "kubectl", Image: image, Deadline: time.Hour})
		require.NoError(t, err)
		p, err = env.Client.CoreV1().Pods(ns+"-cmd").Create(ctx, p, metav1.CreateOptions{})
		require.NoError(t, err)
		return p.Name
	}
	leftover, foreign, own := create(dead), create(other), create(agent)

	// None of them says where a result goes: nothing is delivered.
	deliver := func(context.Context, podrun.Adopted) error {
		t.Error("a pod without reply annotations was adopted")
		return nil
	}
	// With several replicas, a pod within its deadline may be another's.
	require.NoError(t, agent.Adopt(ctx, []string{ns + "-cmd"}, true, deliver))
	all, err := env.Client.CoreV1().Pods(ns+"-cmd").List(ctx, metav1.ListOptions{LabelSelector: podrun.LabelCommand + "=true"})
	require.NoError(t, err)
	require.Len(t, all.Items, 3)

	require.NoError(t, agent.Adopt(ctx, []string{ns + "-cmd"}, false, deliver))
	pods, err := env.Client.CoreV1().Pods(ns+"-cmd").List(ctx, metav1.ListOptions{LabelSelector: podrun.LabelCommand + "=true"})
	require.NoError(t, err)
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	require.ElementsMatch(t, []string{foreign, own}, names)
	require.NotContains(t, names, leftover)
}

func TestPodSpec(t *testing.T) {
	r := podrun.New(nil, "prod", nil)
	p, err := r.Pod(podrun.Spec{Namespace: "team", ServiceAccount: "reader", Executor: "kubectl", Image: image,
		Args: []string{"exec", "--", "kubectl", "get", "pods"}, Deadline: 2500 * time.Millisecond,
		Resources: config.PodSettings{}.WithDefaults().Resources})
	require.NoError(t, err)
	s := p.Spec
	require.Equal(t, corev1.RestartPolicyNever, s.RestartPolicy)
	require.Equal(t, "reader", s.ServiceAccountName)
	require.Equal(t, int64(3), *s.ActiveDeadlineSeconds)
	require.True(t, *s.SecurityContext.RunAsNonRoot)
	require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, s.SecurityContext.SeccompProfile.Type)
	c := s.Containers[0]
	require.Nil(t, c.Command, "the image's entrypoint runs")
	require.Equal(t, []string{"exec", "--", "kubectl", "get", "pods"}, c.Args)
	require.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	require.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)
	require.Equal(t, corev1.PullIfNotPresent, c.ImagePullPolicy)
	require.Equal(t, "256Mi", c.Resources.Limits.Memory().String())
	require.Equal(t, "50m", c.Resources.Requests.Cpu().String())
	require.Equal(t, "true", p.Labels[podrun.LabelCommand])
	require.Equal(t, "prod", p.Labels[podrun.LabelCluster])
	require.Equal(t, r.Agent(), p.Labels[podrun.LabelAgent])
}

func TestExecArgs(t *testing.T) {
	settings, err := config.RawFromYAML("driver: configmap\n")
	require.NoError(t, err)
	args, err := podrun.ExecArgs("helm", settings, executor.Request{Args: []string{"list", "; rm -rf /"}, Namespace: "web", MaxOutputBytes: 100})
	require.NoError(t, err)
	require.Equal(t, []string{"exec", "--namespace", "web", "--max-output-bytes", "100", "--settings", "driver: configmap\n", "--", "helm", "list", "; rm -rf /"}, args,
		"one argv element per argument: nothing is ever a shell line")
}

func TestResult(t *testing.T) {
	res := podrun.Result(podrun.Outcome{Pod: "p", Output: "Error from server (Forbidden): pods is forbidden: User \"x\"\n", ExitCode: 1, Reason: "Error"})
	require.True(t, res.Forbidden)
	require.Empty(t, res.Output)
	res = podrun.Result(podrun.Outcome{Pod: "p", Output: "NAME\n", ExitCode: 0, Reason: "Completed"})
	require.Equal(t, executor.Result{Output: "NAME\n"}, res)
	res = podrun.Result(podrun.Outcome{Pod: "p", Output: "half", ExitCode: 137, Reason: podrun.ReasonOOMKilled, MemoryLimit: "8Mi"})
	require.Equal(t, 137, res.ExitCode)
	require.Equal(t, "Stopped: the command's pod p went over its memory limit of 8Mi and was killed (OOMKilled). Its output until then:\nhalf", res.Errors)
	res = podrun.Result(podrun.Outcome{Pod: "p", ExitCode: 3, Reason: "Error"})
	require.Equal(t, "The command's pod p ended with exit code 3 (Error) and printed nothing.", res.Errors)
	res = podrun.Result(podrun.Outcome{Pod: "p", ExitCode: 1, Reason: "Evicted", Message: "The node was low on resource: memory."})
	require.Equal(t, "The node was low on resource: memory.", res.Errors)
}

// TestSecretsMaskedInPodOutput: a pod-mode command that reads a Secret
// prints it masked, as in-process: the pod masks what its client saw.
func TestSecretsMaskedInPodOutput(t *testing.T) {
	start(t)
	ctx := t.Context()
	const ns = "podrun-secrets"
	id := namespace(t, ns)
	_, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": "hunter2-very-secret"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = env.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = env.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secret-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns + "-cmd", Name: "reader"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	w, _ := wrapped(t, config.PodSettings{})
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := w.Execute(cctx, executor.Request{Args: []string{"get", "secret", "db", "-o", "yaml"}, Namespace: ns, Identity: id})
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, res.Errors)
	require.Contains(t, res.Output, "password: ***")
	require.NotContains(t, res.Output, "hunter2")
	require.NotContains(t, res.Output, "aHVudGVyMi12ZXJ5LXNlY3JldA==")
	noCommandPods(t, ns)
}

// TestHelmInAPod: any executor can be isolated unchanged, its settings
// handed to the pod: helm with the configmap driver lists releases as
// the reader, whom the default secret driver would get refused for.
func TestHelmInAPod(t *testing.T) {
	start(t)
	const ns = "podrun-helm"
	id := namespace(t, ns)
	settings, err := config.RawFromYAML("driver: configmap\n")
	require.NoError(t, err)
	inProcess, err := helm.New("helm", settings, executor.Deps{RESTConfig: env.Config})
	require.NoError(t, err)
	w, err := podrun.Wrap(inProcess, podrun.New(env.Client, "test", nil), podrun.Options{Type: "helm", Settings: settings,
		Pod: config.PodSettings{Image: image}.WithDefaults()})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	req := executor.Request{Args: []string{"list"}, Namespace: ns, Identity: id}
	local, err := inProcess.Execute(ctx, req)
	require.NoError(t, err)
	require.Equal(t, 0, local.ExitCode, local.Errors)
	inPod, err := w.Execute(ctx, req)
	require.NoError(t, err)
	require.Equal(t, 0, inPod.ExitCode, inPod.Errors)
	require.Contains(t, inPod.Output, "NAME")
	require.Equal(t, local.Output, inPod.Output)

	// Without the settings, the pod's helm would read Secrets, and RBAC says no.
	plain, err := podrun.Wrap(inProcess, podrun.New(env.Client, "test", nil), podrun.Options{Type: "helm",
		Pod: config.PodSettings{Image: image}.WithDefaults()})
	require.NoError(t, err)
	refused, err := plain.Execute(ctx, req)
	require.NoError(t, err)
	require.NotEqual(t, 0, refused.ExitCode)
	require.True(t, refused.Forbidden, refused.Errors)
	noCommandPods(t, ns)
}

// phaseCounts is how many pods kubechat_command_pod_phase_seconds timed, by phase.
func phaseCounts(t *testing.T, reg prometheus.Gatherer) map[string]uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "kubechat_command_pod_phase_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	require.Len(t, out, 5, "every phase is served")
	return out
}

// TestPhasesSplitThePodsLife: each phase runs from the stamp before it to
// the next one seen; a stamp the watch never saw takes the next one's time.
func TestPhasesSplitThePodsLife(t *testing.T) {
	start := time.Unix(100, 0)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	require.Equal(t, podrun.Phases{Create: 10 * time.Millisecond, Schedule: 20 * time.Millisecond, Start: 30 * time.Millisecond, Run: 40 * time.Millisecond, Collect: 50 * time.Millisecond},
		podrun.PhasesOf(start, at(10), at(30), at(60), at(100), at(150)))
	// Seen only ended: scheduling and start took no time of their own.
	require.Equal(t, podrun.Phases{Create: 10 * time.Millisecond, Schedule: 90 * time.Millisecond, Collect: 50 * time.Millisecond},
		podrun.PhasesOf(start, at(10), time.Time{}, time.Time{}, at(100), at(150)))
}
