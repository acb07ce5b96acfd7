//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/github/githubtest"
	"github.com/kubechat/kubechat/plugins/flux/fluxtest"
)

const e2eWebhookSecret = "e2e-webhook-secret"

func githubLoopConfig(slackURL, githubURL, fluxNS string) string {
	return agentBase(fluxNS) + slackPlatform(slackURL) + fmt.Sprintf(`channels:
  - name: gitops
    platform: ops-slack
    bindings:
      sources: [fleet-prs]
      executors: [flux-review]
      actions: [pr-diff, rollout]
      matchers: ['repository="acme/fleet"']
    identity:
      user: e2e-flux-reviewer
      groups: [e2e-flux-reviewers]
executors:
  - name: flux-review
    type: flux
    settings:
      github:
        baseURL: %[1]s
        token: ${E2E_GITHUB_TOKEN}
    policy:
      verbs: [diff, comment, approve, report, follow]
      namespaces: [%[2]s]
      defaultNamespace: %[2]s
      timeout: 2m
sources:
  - name: fleet-prs
    type: github
    github:
      webhookSecret: ${E2E_WEBHOOK_SECRET}
      api:
        baseURL: %[1]s
        token: ${E2E_GITHUB_TOKEN}
actions:
  - name: pr-diff
    source: fleet-prs
    reasons: [PullRequestUpdated]
    command: flux report kustomization {name} -n {namespace} --github-ref {label:pr} --sha {label:sha}
  - name: rollout
    source: fleet-prs
    reasons: [PullRequestMerged]
    command: flux follow kustomization {name} -n {namespace} --sha {label:sha}
`, githubURL, fluxNS)
}

// TestGitHubPullRequestLoop: a signed pull_request delivery for a pull
// request that touches the Kustomization's path posts the event to the
// mapped channel, and the action's report into its thread: the diff with
// its buttons, one comment on the pull request and the kubechat/diff
// status on its head. A pull request touching nothing relevant gets
// nothing; a second push gets its own report, replacing the comment. Each
// status links to the pull request's chat thread. The
// merge is followed until the Kustomization is Ready at the merge commit.
func TestGitHubPullRequestLoop(t *testing.T) {
	ctx := t.Context()
	const appNS, fluxNS = "gh-e2e-apps", "gh-e2e"
	fleet := fluxtest.New(t, env, appNS, fluxNS)
	require.NoError(t, env.BindGroupToClusterRole(ctx, "e2e-flux-reviewers", "cluster-admin"))
	first := fleet.OpenPR(t, 51, "scale-web", fluxtest.PRFiles())
	docs := fleet.OpenPR(t, 52, "docs", map[string]string{"README.md": "docs\n"})

	t.Setenv("E2E_GITHUB_TOKEN", fluxtest.GitHubToken)
	t.Setenv("E2E_WEBHOOK_SECRET", e2eWebhookSecret)
	srv := startSlack(t)
	srv.AddChannel("gitops")
	a := startAgent(t, githubLoopConfig(srv.APIURL(), fleet.GitHub.APIURL(), fluxNS))
	waitReady(t, a)
	waitConnected(t, srv, 1)
	ch := srv.ChannelID("gitops")
	hook := "http://" + a.addr + "/github/fleet-prs"
	deliver := func(id string, body []byte) (int, string) {
		t.Helper()
		code, text, err := githubtest.Deliver(hook, e2eWebhookSecret, githubtest.Delivery{Event: "pull_request", ID: id, Body: body})
		require.NoError(t, err)
		return code, text
	}

	code, text, err := githubtest.Deliver(hook, "wrong", githubtest.Delivery{Event: "pull_request", ID: "x", Body: []byte("{}")})
	require.NoError(t, err)
	require.Equal(t, 401, code, text)

	code, text = deliver("docs-1", fleet.GitHub.PullRequestEvent("opened", fluxtest.Owner, fluxtest.Repo, 52, ""))
	require.Equal(t, 202, code, text)
	require.Contains(t, text, "0 event(s)", "a pull request touching nothing relevant")

	code, text = deliver("pr51-1", fleet.GitHub.PullRequestEvent("opened", fluxtest.Owner, fluxtest.Repo, 51, ""))
	require.Equal(t, 202, code, text)
	// Other tests' Kustomizations of the same repository may share this
	// cluster (out of the executor's namespaces, so refused); this one's
	// own event is the message waited for below.
	require.Regexp(t, `\b[1-9][0-9]* event\(s\)`, text)
	ev := waitSlack(t, srv, "gitops", "the pull request's event", func(m slacktest.Message) bool {
		return strings.Contains(m.Text, "Pull request acme/fleet#51 touches Kustomization "+fluxNS+"/apps at "+first[:7])
	})
	report := waitItem(t, "the report with its Approve button", func() []slacktest.Message { return srv.Messages(ch) },
		func(m slacktest.Message) bool {
			return m.ThreadTS == ev.TS && m.User == slacktest.BotUserID && strings.Contains(string(m.Blocks), `"Approve PR"`)
		})
	var thread strings.Builder
	for _, m := range srv.Messages(ch) {
		if m.ThreadTS == ev.TS {
			thread.WriteString(slackText(m) + "\n")
		}
	}
	require.Contains(t, thread.String(), "1 created, 1 configured, 1 deleted")
	require.Contains(t, thread.String(), "Commit status kubechat/diff on "+first[:7]+": success")
	require.NotContains(t, thread.String(), fluxtest.DBPassword)
	require.NotEmpty(t, buttonID(t, report, "Approve PR"))

	statusesOf := func(sha string) []githubtest.Status {
		var out []githubtest.Status
		for _, s := range fleet.GitHub.Statuses() {
			if s.SHA == sha && s.State != "pending" {
				out = append(out, s)
			}
		}
		return out
	}
	require.Len(t, fleet.GitHub.Comments(51), 1)
	require.Contains(t, fleet.GitHub.Comments(51)[0].Body, first)
	require.Len(t, statusesOf(first), 1)
	require.Equal(t, "success", statusesOf(first)[0].State)
	threadURL := slacktest.Permalink(ch, ev.TS, "")
	require.Equal(t, threadURL, statusesOf(first)[0].TargetURL, "the status links to the chat thread of the report")
	require.Empty(t, fleet.GitHub.Comments(52))
	require.Empty(t, statusesOf(docs))

	// The same delivery again (GitHub's redelivery of a success) does nothing.
	code, text = deliver("pr51-1", fleet.GitHub.PullRequestEvent("opened", fluxtest.Owner, fluxtest.Repo, 51, ""))
	require.Equal(t, 200, code, text)
	require.Contains(t, text, "already processed")

	// A second push: its own report, the comment replaced, its own status.
	second := fleet.Push(t, 51, "scale-web", map[string]string{"deploy/deployment.yaml": fluxtest.Deployment(5, "nginx:1.27")})
	code, text = deliver("pr51-2", fleet.GitHub.PullRequestEvent("synchronize", fluxtest.Owner, fluxtest.Repo, 51, ""))
	require.Equal(t, 202, code, text)
	// The push's event goes into the pull request's thread, and its own
	// report follows it there.
	ev2 := waitSlack(t, srv, "gitops", "the push's event", func(m slacktest.Message) bool {
		return strings.Contains(m.Text, "touches Kustomization "+fluxNS+"/apps at "+second[:7])
	})
	require.Equal(t, ev.TS, ev2.ThreadTS, "the push's event is in the pull request's thread")
	waitItem(t, "the push's report", func() []slacktest.Message { return srv.Messages(ch) },
		func(m slacktest.Message) bool {
			return m.ThreadTS == ev.TS && strings.Contains(slackText(m), "Commit status kubechat/diff on "+second[:7]+": success")
		})
	comments := fleet.GitHub.Comments(51)
	require.Len(t, comments, 1, "one comment, replaced")
	require.Contains(t, comments[0].Body, second)
	require.Contains(t, comments[0].Body, "+  replicas: 5")
	require.Len(t, statusesOf(second), 1)
	require.Equal(t, threadURL, statusesOf(second)[0].TargetURL, "the push's report is in the same thread")
	require.Len(t, statusesOf(first), 1)

	// The merge: its event, and the rollout followed until
	// kustomize-controller (the test, here) reports Ready at the merge commit.
	merge := strings.Repeat("c", 40)
	code, text = deliver("pr51-3", fleet.GitHub.PullRequestEvent("closed", fluxtest.Owner, fluxtest.Repo, 51, merge))
	require.Equal(t, 202, code, text)
	merged := waitSlack(t, srv, "gitops", "the merge's event", func(m slacktest.Message) bool {
		return strings.Contains(m.Text, "Pull request acme/fleet#51 was merged: Kustomization "+fluxNS+"/apps")
	})
	require.Equal(t, ev.TS, merged.ThreadTS, "the merge is posted into the pull request's thread")
	// While kustomize-controller has not applied the merge, the thread
	// shows what the rollout waits for; that message is then edited with
	// the outcome.
	waiting := waitItem(t, "the rollout's progress", func() []slacktest.Message { return srv.Messages(ch) },
		func(m slacktest.Message) bool {
			return m.ThreadTS == ev.TS && strings.Contains(slackText(m), "Waiting for Kustomization "+fluxNS+"/apps to apply ccccccc")
		})
	fleet.Reconciled(t, env, merge, metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: main@sha1:"+merge)
	outcome := waitItem(t, "the rollout's outcome", func() []slacktest.Message { return srv.Messages(ch) },
		func(m slacktest.Message) bool {
			return m.ThreadTS == ev.TS && strings.Contains(slackText(m), "is Ready at ccccccc")
		})
	require.Equal(t, waiting.TS, outcome.TS, "the outcome edits the message that showed the progress")
	require.Positive(t, outcome.Edits)
}
