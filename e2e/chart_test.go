//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/helm/helmtest"
)

// TestChartInstallsAndRunsWithItsRBAC installs helm/kubechat with the Helm
// SDK. kwok runs no containers, so the agent then runs out of cluster with
// the chart's ServiceAccount token and the config the chart rendered: it
// syncs, wins the Lease, alerts and answers a command with exactly the
// chart's RBAC, and that RBAC refuses what the config does not need.
func TestChartInstallsAndRunsWithItsRBAC(t *testing.T) {
	ctx := t.Context()
	const ns, apps = "chart-e2e", "chart-apps"
	for _, n := range []string{ns, apps} {
		require.NoError(t, env.CreateNamespace(ctx, n))
	}
	srv := startSlack(t)
	vals := map[string]any{}
	require.NoError(t, yaml.Unmarshal([]byte(fmt.Sprintf(`
image: {repository: kubechat, tag: e2e}
config:
  cluster: {name: e2e}
  platforms:
    - name: ops-slack
      type: slack
      settings: {botToken: "${E2E_SLACK_BOT_TOKEN}", appToken: "${E2E_SLACK_APP_TOKEN}", apiURL: %q}
  channels:
    - name: alerts
      platform: ops-slack
      bindings: {sources: [workloads]}
    - name: general
      platform: ops-slack
      bindings: {executors: [kubectl]}
      identity: {serviceAccount: %s/reader}
  sources:
    - name: workloads
      type: kubernetes
      kubernetes:
        namespaces: {include: [%s]}
        resources: [{type: v1/pods, events: [error]}]
  executors:
    - name: kubectl
      type: kubectl
      policy: {namespaces: ["*"], defaultNamespace: %s}
`, srv.APIURL(), apps, apps, apps)), &vals))
	require.NoError(t, helmtest.Install(ctx, env.Config, ns, "kubechat", "../helm/kubechat", vals))

	// The chart's pods run on the kwok nodes (as far as kwok runs anything).
	pod, err := env.WaitForPod(ctx, ns, "app.kubernetes.io/name=kubechat", testenv.PodReady)
	require.NoError(t, err)
	require.Equal(t, "kubechat", pod.Spec.ServiceAccountName)

	// The channel's identity may read the apps namespace.
	_, err = env.Client.RbacV1().RoleBindings(apps).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: apps, Name: "reader"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	// The agent, as the chart's ServiceAccount, with the chart's config.
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "kubechat-config", metav1.GetOptions{})
	require.NoError(t, err)
	dir := t.TempDir()
	chartCfg, local := filepath.Join(dir, "chart.yaml"), filepath.Join(dir, "local.yaml")
	require.NoError(t, os.WriteFile(chartCfg, []byte(cm.Data["kubechat.yaml"]), 0o600))
	require.NoError(t, os.WriteFile(local, []byte("log: {format: text}\nhttp: {listen: 127.0.0.1:0}\n"), 0o600))
	saCfg, err := env.ServiceAccountConfig(ctx, ns, "kubechat")
	require.NoError(t, err)
	kubeconfig := filepath.Join(dir, "sa.kubeconfig")
	require.NoError(t, testenv.WriteKubeconfig(saCfg, kubeconfig))
	setChartEnv(t, ns, "kubechat")
	a := startAgentArgs(t, "run", "--config", chartCfg, "--config", local, "--kubeconfig", kubeconfig)
	waitReady(t, a)
	waitConnected(t, srv, 1)
	eventually(t, 30*time.Second, "the leader Lease", func() error {
		_, err := env.Client.CoordinationV1().Leases(ns).Get(ctx, "kubechat-leader", metav1.GetOptions{})
		return err
	})

	_, err = env.Client.AppsV1().Deployments(apps).Create(ctx, testenv.Deployment("broken", map[string]string{testenv.CrashLoopLabel: "true"}), metav1.CreateOptions{})
	require.NoError(t, err)
	waitSlack(t, srv, "alerts", "the crash-loop alert", func(m slacktest.Message) bool {
		return strings.Contains(m.Text, "is failing (CrashLoopBackOff)")
	})
	broken, err := env.WaitForPod(ctx, apps, "app=broken", func(corev1.Pod) bool { return true })
	require.NoError(t, err)
	ts, _, err := srv.Mention(srv.ChannelID("general"), "UALICE01", "kubectl get pods")
	require.NoError(t, err)
	waitSlack(t, srv, "general", "the command's reply", func(m slacktest.Message) bool {
		return m.ThreadTS == ts && strings.Contains(string(m.Blocks), broken.Name)
	})

	// What the chart's RBAC allows the agent, and what it does not.
	sa := "system:serviceaccount:" + ns + ":kubechat"
	can := func(attrs authorizationv1.ResourceAttributes) bool {
		t.Helper()
		r, err := env.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns},
				ResourceAttributes: &attrs}}, metav1.CreateOptions{})
		require.NoError(t, err)
		return r.Status.Allowed
	}
	require.True(t, can(authorizationv1.ResourceAttributes{Verb: "watch", Resource: "pods"}))
	require.True(t, can(authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "serviceaccounts", Namespace: apps, Name: "reader"}))
	for what, attrs := range map[string]authorizationv1.ResourceAttributes{
		"read Secrets":                    {Verb: "get", Resource: "secrets", Namespace: apps},
		"list Secrets":                    {Verb: "list", Resource: "secrets"},
		"watch Deployments (not watched)": {Verb: "watch", Group: "apps", Resource: "deployments"},
		"impersonate another SA":          {Verb: "impersonate", Resource: "serviceaccounts", Namespace: apps, Name: "default"},
		"impersonate a user":              {Verb: "impersonate", Resource: "users", Name: "admin"},
		"impersonate system:masters":      {Verb: "impersonate", Resource: "groups", Name: "system:masters"},
		"delete pods":                     {Verb: "delete", Resource: "pods", Namespace: apps},
		"update other ConfigMaps":         {Verb: "update", Resource: "configmaps", Namespace: ns, Name: "kubechat-config"},
	} {
		require.False(t, can(attrs), "the chart's RBAC must not let the agent %s", what)
	}
}

// setChartEnv sets, for agents this test starts, the environment the chart's
// Deployment gives its container: literal values and Secret references as the
// kubelet resolves them (field and resource references have no meaning for a
// process outside a pod, and are left out).
func setChartEnv(t *testing.T, ns, deployment string) {
	t.Helper()
	ctx := t.Context()
	d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
	require.NoError(t, err)
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		switch {
		case e.ValueFrom == nil:
			t.Setenv(e.Name, e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, err := env.Client.CoreV1().Secrets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
			require.NoError(t, err, "the Secret %s that env %s names", ref.Name, e.Name)
			v, ok := s.Data[ref.Key]
			require.True(t, ok, "Secret %s has no key %s for env %s", ref.Name, ref.Key, e.Name)
			t.Setenv(e.Name, string(v))
		}
	}
}
