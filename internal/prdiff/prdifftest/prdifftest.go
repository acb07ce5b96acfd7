// Package prdifftest checks a report command (what a github source's push
// runs) the same way for every executor that offers one: the flux and
// argocd executors both report through prdiff.Differ.Report, and each
// test runs this against its own object, repository and fake GitHub.
package prdifftest

import (
	"strconv"
	"testing"

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
	// Run runs the executor's report command at sha.
	Run func(sha string) executor.Result
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
// is not touched. It returns the first report's result, for the caller's
// own checks of the diff.
func Check(t *testing.T, c Report) executor.Result {
	t.Helper()
	ours := func() []githubtest.Comment { return c.GitHub.CommentsWith(c.Number, c.Marker) }
	first := c.Run(c.First)
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
	res := c.Run(second)
	require.Equal(t, 1, res.ExitCode, res.Output)
	require.Len(t, ours(), 1)
	require.Contains(t, ours()[0].Body, second)
	require.Contains(t, ours()[0].Body, "the diff failed")
	st = c.GitHub.StatusesOf(second)
	require.Len(t, st, 2)
	require.Equal(t, "failure", st[1].State)
	require.Contains(t, st[1].Description, c.What+" does not build")

	res = c.Run(c.First)
	require.Equal(t, 0, res.ExitCode, res.Errors)
	require.Contains(t, res.Output, "Not posted to "+c.Repo+"#"+strconv.Itoa(c.Number)+": its head moved")
	require.Contains(t, ours()[0].Body, second)
	require.Len(t, c.GitHub.StatusesOf(second), 2)
	return first
}
