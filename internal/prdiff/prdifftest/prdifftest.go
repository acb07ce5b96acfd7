// Package prdifftest checks a report command (what a github source's push
// runs) the same way for every executor that offers one: the flux and
// argocd executors both report through prdiff.Differ.Report, and each
// test runs this against its own object, repository and fake GitHub.
package prdifftest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/github/githubtest"
)

// Report is one object's pull request, ready to be reported.
type Report struct {
	GitHub *githubtest.Server
	// Repo ("acme/fleet") and Number are the pull request, First its head.
	Repo   string
	Number int
	First  string
	// Marker is in the object's comment, and in no other.
	Marker string
	// Executor runs Request(sha), the report command at sha.
	Executor executor.Executor
	Request  func(sha string) executor.Request
	// Break pushes a commit that does not build to the pull request and
	// returns it.
	Break func() string
	// Summary is the status's description of First's report.
	Summary string
	// What names the object in a failure's description ("Application argocd/plain").
	What string
}

// Check reports First: one comment with the diff at First, and its
// status kubechat/diff pending, then success, linking the comment. Then
// a push that breaks the build: its report replaces the comment and
// fails its own commit's status. Then First's report again, as a retry
// finishing late: the newer comment stays, and the newer commit's status
// is not touched. Last, the broken push's report run in a chat thread:
// its statuses link to the thread. It returns the first report's result,
// for the caller's own checks of the diff.
func Check(t *testing.T, c Report) executor.Result {
	t.Helper()
	ours := func() []githubtest.Comment { return c.GitHub.CommentsWith(c.Number, c.Marker) }
	// inThread runs the report at sha in the chat thread at thread (none:
	// typed), and says whether its Analysis asked for the thread's address.
	inThread := func(sha, thread string) (executor.Result, bool) {
		t.Helper()
		req := c.Request(sha)
		req.Caller.ThreadURL = thread
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		a, err := c.Executor.Analyze(ctx, req.Args)
		require.NoError(t, err)
		res, err := c.Executor.Execute(ctx, req)
		require.NoError(t, err)
		return res, a.LinksThread
	}
	run := func(sha string) executor.Result {
		t.Helper()
		res, _ := inThread(sha, "")
		return res
	}
	first := run(c.First)
	require.Equal(t, 0, first.ExitCode, first.Errors)
	require.Contains(t, first.Output, "Commit status kubechat/diff on "+c.First[:7]+": success")
	require.Len(t, ours(), 1)
	require.Contains(t, ours()[0].Body, c.First)
	st := c.GitHub.StatusesOf(c.First)
	require.Len(t, st, 2)
	require.Equal(t, []string{"pending", "success"}, []string{st[0].State, st[1].State})
	require.Equal(t, "kubechat/diff", st[1].Context)
	require.Equal(t, c.Summary, st[1].Description)
	require.Contains(t, st[1].TargetURL, "#issuecomment-", "the status links to the report")
	require.Equal(t, "Approve PR", first.Buttons[0].Label)

	second := c.Break()
	res := run(second)
	require.Equal(t, 1, res.ExitCode, res.Output)
	require.Len(t, ours(), 1)
	require.Contains(t, ours()[0].Body, second)
	require.Contains(t, ours()[0].Body, "the diff failed")
	st = c.GitHub.StatusesOf(second)
	require.Len(t, st, 2)
	require.Equal(t, "failure", st[1].State)
	require.Contains(t, st[1].Description, c.What+" does not build")

	res = run(c.First)
	require.Equal(t, 0, res.ExitCode, res.Errors)
	require.Contains(t, res.Output, "Not posted to "+c.Repo+"#"+strconv.Itoa(c.Number)+": its head moved")
	require.Contains(t, ours()[0].Body, second)
	require.Len(t, c.GitHub.StatusesOf(second), 2)

	// Run in a chat thread (a pull request event's action), the status
	// links to that thread rather than to the comment.
	const thread = "https://kubechat-test.slack.com/archives/C000ALERTS/p1700000000000100"
	res, links := inThread(second, thread)
	require.True(t, links, "a report asks for its thread's address")
	require.Equal(t, 1, res.ExitCode, res.Output)
	st = c.GitHub.StatusesOf(second)
	require.Len(t, st, 4)
	require.Equal(t, []string{thread, thread}, []string{st[2].TargetURL, st[3].TargetURL}, "pending and final link to the thread")
	return first
}
