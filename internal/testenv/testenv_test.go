package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

var env *Env

func TestMain(m *testing.M) {
	Main(m, &env, Options{Users: []User{{Name: "alice", Groups: []string{"devs"}}}})
}

func TestDeploymentGetsRunningPodOnKwokNode(t *testing.T) {
	Skip(t, env)
	ctx := t.Context()
	require.NoError(t, env.CreateNamespace(ctx, "deploy"))
	_, err := env.Client.AppsV1().Deployments("deploy").Create(ctx, Deployment("web", nil), metav1.CreateOptions{})
	require.NoError(t, err)

	pod := waitPod(t, "deploy", "app=web", func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && PodReady(p) })
	require.Contains(t, env.Nodes, pod.Spec.NodeName, "scheduled by the real scheduler onto a kwok node")
	require.NotEmpty(t, pod.Status.PodIP)
}

func TestCrashLoopStageAndRecovery(t *testing.T) {
	Skip(t, env)
	ctx := t.Context()
	require.NoError(t, env.CreateNamespace(ctx, "crash"))
	_, err := env.Client.AppsV1().Deployments("crash").Create(ctx,
		Deployment("broken", map[string]string{CrashLoopLabel: "true"}), metav1.CreateOptions{})
	require.NoError(t, err)

	pod := waitPod(t, "crash", "app=broken", func(p corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil &&
			p.Status.ContainerStatuses[0].State.Waiting.Reason == "CrashLoopBackOff"
	})
	require.False(t, PodReady(pod))
	require.EqualValues(t, 3, pod.Status.ContainerStatuses[0].RestartCount)

	// kwok reports a Warning BackOff event for the pod.
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := env.Client.CoreV1().Events("crash").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == "BackOff" && e.Type == corev1.EventTypeWarning {
				return true, nil
			}
		}
		return false, nil
	}))

	// Removing the label lets the pod recover.
	patch := []byte(`{"metadata":{"labels":{"` + CrashLoopLabel + `":null}}}`)
	_, err = env.Client.CoreV1().Pods("crash").Patch(ctx, pod.Name, "application/merge-patch+json", patch, metav1.PatchOptions{})
	require.NoError(t, err)
	waitPod(t, "crash", "app=broken", func(p corev1.Pod) bool { return p.Name == pod.Name && PodReady(p) })
}

func TestIdentities(t *testing.T) {
	Skip(t, env)
	ctx := t.Context()
	alice, err := env.ConfigFor("alice")
	require.NoError(t, err)
	cs, err := kubernetes.NewForConfig(alice)
	require.NoError(t, err)
	_, err = cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	require.True(t, apierrors.IsForbidden(err), "RBAC is on: alice may do nothing yet, got %v", err)
	require.Contains(t, err.Error(), `User "alice"`)

	saCfg, err := env.ServiceAccountConfig(ctx, "default", "agent")
	require.NoError(t, err)
	sacs, err := kubernetes.NewForConfig(saCfg)
	require.NoError(t, err)
	_, err = sacs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	require.Contains(t, err.Error(), `"system:serviceaccount:default:agent"`)

	_, err = env.ConfigFor("mallory")
	require.EqualError(t, err, `testenv: no token user "mallory" (declare it in Options.Users)`)
}

func waitPod(t *testing.T, ns, selector string, ok func(corev1.Pod) bool) corev1.Pod {
	t.Helper()
	p, err := env.WaitForPod(t.Context(), ns, selector, ok)
	require.NoError(t, err)
	return p
}

func TestPodLogsServedThroughTheAPIServer(t *testing.T) {
	Skip(t, env)
	ctx := t.Context()
	require.NoError(t, env.CreateNamespace(ctx, "logs"))
	_, err := env.Client.AppsV1().Deployments("logs").Create(ctx, Deployment("web", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = env.Client.AppsV1().Deployments("logs").Create(ctx,
		Deployment("broken", map[string]string{CrashLoopLabel: "true"}), metav1.CreateOptions{})
	require.NoError(t, err)
	web := waitPod(t, "logs", "app=web", PodReady)
	broken := waitPod(t, "logs", "app=broken", func(p corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil
	})
	container := web.Spec.Containers[0].Name

	require.NoError(t, env.SetPodLogs(ctx, "logs", web.Name, container, "one\ntwo\nthree\n", "old run\n"))
	logs := func(pod string, opts corev1.PodLogOptions) string {
		t.Helper()
		opts.Container = container
		out, err := env.Client.CoreV1().Pods("logs").GetLogs(pod, &opts).DoRaw(ctx)
		require.NoError(t, err)
		return string(out)
	}
	require.Equal(t, "one\ntwo\nthree\n", logs(web.Name, corev1.PodLogOptions{}))
	tail := int64(1)
	require.Equal(t, "three\n", logs(web.Name, corev1.PodLogOptions{TailLines: &tail}))
	require.Equal(t, "old run\n", logs(web.Name, corev1.PodLogOptions{Previous: true}))

	// A crash-looping container's previous instance, as kubectl logs --previous reads it.
	require.NoError(t, env.SetPodLogs(ctx, "logs", broken.Name, container, "", "panic: boom\n"))
	require.Equal(t, "panic: boom\n", logs(broken.Name, corev1.PodLogOptions{Previous: true}))

	// Replacing the logs replaces what the API serves.
	require.NoError(t, env.SetPodLogs(ctx, "logs", web.Name, container, "fresh\n", ""))
	require.Equal(t, "fresh\n", logs(web.Name, corev1.PodLogOptions{}))
}
