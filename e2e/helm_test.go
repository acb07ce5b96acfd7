//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/chat/chattest"
	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/plugins/helm/helmtest"
)

func helmConfig(apiURL, ns string) string {
	return agentBase(ns) + slackPlatform(apiURL) + fmt.Sprintf(`channels:
  - name: releases
    platform: ops-slack
    bindings:
      sources: [helm-releases]
  - name: dev
    platform: ops-slack
    bindings:
      executors: [helm-read]
    identity:
      user: e2e-helm-reader
      groups: [e2e-helm-readers]
  - name: ops
    platform: ops-slack
    bindings:
      executors: [helm-ops]
    identity:
      user: e2e-helm-operator
      groups: [e2e-helm-operators]
sources:
  - name: helm-releases
    type: kubernetes
    kubernetes:
      namespaces:
        include: [%[1]s]
      resources:
        - type: v1/secrets
          labels: owner=helm
          events: [error]
executors:
  - name: helm-read
    type: helm
    policy:
      namespaces: [%[1]s]
      defaultNamespace: %[1]s
  - name: helm-ops
    type: helm
    policy:
      verbs: [list, status, history, rollback, upgrade]
      namespaces: [%[1]s]
      defaultNamespace: %[1]s
      timeout: 2m
`, ns)
}

// slackText is what a reader sees of a Slack message.
func slackText(m slacktest.Message) string {
	return m.Text + "\n" + chattest.JSONText([]string{"text"}, m.Blocks)
}

// TestHelmReadsWritesAndReleaseAlerts: two releases installed with the SDK;
// helm list, status and history through Slack show what the helm CLI shows
// for the same identity; a rollback from the read-only channel is denied;
// in the ops channel an upgrade and a rollback each wait for a Confirm
// click; the failed upgrade is one alert, which the rollback resolves.
func TestHelmReadsWritesAndReleaseAlerts(t *testing.T) {
	ctx := t.Context()
	const ns = "helm-e2e"
	require.NoError(t, env.CreateNamespace(ctx, ns))
	for _, group := range []string{"e2e-helm-readers", "e2e-helm-operators"} {
		// Helm keeps releases in Secrets: reading them needs more than "view".
		_, err := env.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: group},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "admin"},
			Subjects:   []rbacv1.Subject{{Kind: "Group", Name: group}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, helmtest.Install(ctx, env.Config, ns, "web", helmtest.Chart("web"), nil))
	require.NoError(t, helmtest.Install(ctx, env.Config, ns, "api", helmtest.Chart("api"), nil))

	srv := startSlack(t)
	for _, ch := range []string{"releases", "dev", "ops"} {
		srv.AddChannel(ch)
	}
	a := startAgent(t, helmConfig(srv.APIURL(), ns))
	waitReady(t, a)
	waitConnected(t, srv, 1)
	dev, ops := srv.ChannelID("dev"), srv.ChannelID("ops")
	reader := executor.Identity{User: "e2e-helm-reader", Groups: []string{"e2e-helm-readers"}}

	ask := func(channel, text string) slacktest.Message {
		t.Helper()
		ts, _, err := srv.Mention(channel, "UALICE01", text)
		require.NoError(t, err)
		return waitItem(t, "the reply to "+text, func() []slacktest.Message { return srv.Messages(channel) },
			func(m slacktest.Message) bool { return m.ThreadTS == ts && m.User == slacktest.BotUserID })
	}
	for _, args := range [][]string{{"list"}, {"status", "web"}, {"history", "api"}, {"get", "values", "web", "-a"}} {
		want, stderr, err := helmtest.CLI(ctx, env.Kubeconfig(), reader, append([]string{"-n", ns}, args...)...)
		require.NoError(t, err, stderr)
		want = strings.ReplaceAll(want, helmtest.WebPassword, "***")
		got := slackText(ask(dev, "helm "+strings.Join(args, " ")))
		require.Contains(t, got, "```\n"+strings.TrimRight(want, "\n")+"\n```", "helm %s as the CLI prints it", args)
		require.NotContains(t, got, helmtest.WebPassword)
	}

	denied := slackText(ask(dev, "helm rollback web 1"))
	require.Contains(t, denied, "Denied by kubechat policy")
	require.Contains(t, denied, `"rollback" is not one of them`)

	confirmAndRun := func(text, want string) slacktest.Message {
		t.Helper()
		q := ask(ops, text)
		require.Contains(t, slackText(q), "Confirm: helm "+strings.TrimPrefix(text, "helm "))
		_, err := srv.Click(ops, q.TS, "UBOB0001", buttonID(t, q, "Confirm"), "")
		require.NoError(t, err)
		return waitItem(t, "the result of "+text, func() []slacktest.Message { return srv.Messages(ops) },
			func(m slacktest.Message) bool {
				return m.ThreadTS == q.ThreadTS && strings.Contains(slackText(m), want)
			})
	}
	confirmAndRun("helm upgrade web --reuse-values --set replicas=-1", "UPGRADE FAILED")
	releases := srv.ChannelID("releases")
	alert := waitItem(t, "the failed release's alert", func() []slacktest.Message { return srv.Messages(releases) },
		func(m slacktest.Message) bool {
			return strings.Contains(slackText(m), "HelmRelease "+ns+"/web is failing (HelmReleaseFailed)")
		})
	require.Contains(t, slackText(alert), "revision 2 of release web failed")

	confirmAndRun("helm rollback web 1", "Rollback was a success! Happy Helming!")
	waitItem(t, "the alert edited to resolved", func() []slacktest.Message { return srv.Messages(releases) },
		func(m slacktest.Message) bool { return m.TS == alert.TS && strings.Contains(slackText(m), "Resolved") })
	require.Len(t, srv.Messages(releases), 1, "one alert for the failed upgrade, edited on recovery")
	history := slackText(ask(ops, "helm history web"))
	require.Regexp(t, `2\s+.*(superseded|failed).*Upgrade "web" failed`, history)
	require.Regexp(t, `3\s+.*deployed.*Rollback to 1`, history)
}
