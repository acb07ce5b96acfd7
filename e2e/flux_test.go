//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/plugins/flux/fluxtest"
)

func fluxConfig(slackURL, githubURL, fluxNS string) string {
	return agentBase(fluxNS) + slackPlatform(slackURL) + fmt.Sprintf(`channels:
  - name: gitops
    platform: ops-slack
    bindings:
      executors: [flux-review]
    identity:
      user: e2e-flux-reviewer
      groups: [e2e-flux-reviewers]
executors:
  - name: flux-review
    type: flux
    settings:
      github:
        baseURL: %s
        token: ${E2E_GITHUB_TOKEN}
    policy:
      verbs: [diff, comment, approve, get kustomizations]
      namespaces: [%s]
      defaultNamespace: %[2]s
      timeout: 2m
`, githubURL, fluxNS)
}

// TestFluxDiffCommentAndApproveThroughSlack: "flux diff kustomization"
// against a pull request answers in the thread with the changes (the
// substituteFrom Secret value masked) and three buttons; "Post diff to PR"
// leaves one comment on the fake GitHub; "Approve PR" approves at the
// diffed commit; after a push, a second Approve is refused and offers to
// diff again.
func TestFluxDiffCommentAndApproveThroughSlack(t *testing.T) {
	ctx := t.Context()
	const appNS, fluxNS = "flux-e2e-apps", "flux-e2e"
	fleet := fluxtest.New(t, env, appNS, fluxNS)
	require.NoError(t, env.BindGroupToClusterRole(ctx, "e2e-flux-reviewers", "cluster-admin"))
	sha := fleet.OpenPR(t, 31, "scale-web", fluxtest.PRFiles())

	t.Setenv("E2E_GITHUB_TOKEN", fluxtest.GitHubToken)
	srv := startSlack(t)
	srv.AddChannel("gitops")
	a := startAgent(t, fluxConfig(srv.APIURL(), fleet.GitHub.APIURL(), fluxNS))
	waitReady(t, a)
	waitConnected(t, srv, 1)
	ch := srv.ChannelID("gitops")

	// replies collects the bot's messages in a thread: a long reply may
	// come as several messages, the buttons under the last.
	replies := func(thread string) string {
		var b strings.Builder
		for _, m := range srv.Messages(ch) {
			if m.ThreadTS == thread && m.User == slacktest.BotUserID {
				b.WriteString(slackText(m) + "\n")
			}
		}
		return b.String()
	}
	withButton := func(thread, label string) slacktest.Message {
		t.Helper()
		return waitItem(t, "a reply with "+label, func() []slacktest.Message { return srv.Messages(ch) },
			func(m slacktest.Message) bool {
				return m.ThreadTS == thread && m.User == slacktest.BotUserID && strings.Contains(string(m.Blocks), `"`+label+`"`)
			})
	}

	ts, _, err := srv.Mention(ch, "UALICE01", "flux diff kustomization apps --github-ref 31")
	require.NoError(t, err)
	diff := withButton(ts, "Approve PR")
	text := replies(ts)
	for _, want := range []string{
		"ConfigMap/" + appNS + "/settings created",
		"Deployment/" + appNS + "/web configured",
		"Service/" + appNS + "/web deleted",
		"1 created, 1 configured, 1 deleted, 1 unchanged, 0 skipped",
		"+  replicas: 3",
		"+  databasePassword: ***",
	} {
		require.Contains(t, text, want)
	}
	require.NotContains(t, text, fluxtest.DBPassword)
	require.Contains(t, string(diff.Blocks), fleet.GitHub.URL+"/acme/fleet/pull/31", "the View PR link")

	// Post diff to PR: one comment, with the Secret value masked.
	_, err = srv.Click(ch, diff.TS, "UBOB0001", buttonID(t, diff, "Post diff to PR"), "")
	require.NoError(t, err)
	waitItem(t, "the posted confirmation", func() []slacktest.Message { return srv.Messages(ch) },
		func(m slacktest.Message) bool {
			return m.ThreadTS == ts && strings.Contains(slackText(m), "Posted the diff")
		})
	comments := fleet.GitHub.Comments(31)
	require.Len(t, comments, 1)
	require.Contains(t, comments[0].Body, "+  replicas: 3")
	require.Contains(t, comments[0].Body, sha)
	require.NotContains(t, comments[0].Body, fluxtest.DBPassword)

	// Approve PR: a review at the diffed commit.
	_, err = srv.Click(ch, diff.TS, "UBOB0001", buttonID(t, diff, "Approve PR"), "")
	require.NoError(t, err)
	waitItem(t, "the approval", func() []slacktest.Message { return srv.Messages(ch) },
		func(m slacktest.Message) bool {
			return m.ThreadTS == ts && strings.Contains(slackText(m), "Approved acme/fleet#31")
		})
	reviews := fleet.GitHub.Reviews()
	require.Len(t, reviews, 1)
	require.Equal(t, sha, reviews[0].CommitID)
	require.Equal(t, "APPROVE", reviews[0].Event)

	// A push, then Approve from a fresh diff's button of the old commit:
	// refused, with a button to diff again.
	ts2, _, err := srv.Mention(ch, "UALICE01", "flux diff kustomization apps --github-ref 31")
	require.NoError(t, err)
	second := withButton(ts2, "Approve PR")
	fleet.Push(t, 31, "scale-web", map[string]string{"deploy/deployment.yaml": fluxtest.Deployment(5, "nginx:1.27")})
	_, err = srv.Click(ch, second.TS, "UBOB0001", buttonID(t, second, "Approve PR"), "")
	require.NoError(t, err)
	refused := withButton(ts2, "Diff again")
	require.Contains(t, slackText(refused), "Not approved")
	require.Len(t, fleet.GitHub.Reviews(), 1, "no review of a moved head")

	// The spent Approve button does not work twice.
	_, err = srv.Click(ch, diff.TS, "UBOB0001", buttonID(t, diff, "Approve PR"), "")
	require.NoError(t, err)
	waitItem(t, "the refused replay", func() []slacktest.Message { return srv.Messages(ch) },
		func(m slacktest.Message) bool {
			return m.ThreadTS == ts && strings.Contains(slackText(m), "already used")
		})
	require.Len(t, fleet.GitHub.Reviews(), 1)
}
