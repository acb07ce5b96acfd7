package github_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/github"
	"github.com/kubechat/kubechat/internal/github/githubtest"
)

const token = "ghp_fake"

var repo = github.Repo{Owner: "acme", Name: "fleet"}

func newClient(t *testing.T, gh *githubtest.Server) *github.Client {
	t.Helper()
	c, err := github.New(gh.APIURL(), &http.Client{Transport: github.Transport(github.StaticToken(token), nil)})
	require.NoError(t, err)
	return c
}

func TestParseRepoURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://github.com/acme/fleet":           "acme/fleet",
		"https://github.com/acme/fleet.git":       "acme/fleet",
		"ssh://git@github.com/acme/fleet.git":     "acme/fleet",
		"git@github.com:acme/fleet.git":           "acme/fleet",
		"https://ghe.example.com/acme/fleet.git/": "acme/fleet",
	} {
		got, err := github.ParseRepoURL(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got.String(), in)
	}
	for _, bad := range []string{"https://github.com/acme", "https://github.com/a/b/c", "::"} {
		_, err := github.ParseRepoURL(bad)
		require.Error(t, err, bad)
	}
}

func TestFindPullRequest(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.SetPullRequest(githubtest.PullRequest{Owner: "acme", Repo: "fleet", Number: 4, HeadRef: "feat", HeadSHA: "abc", CloneURL: "https://fork/x.git"})
	c := newClient(t, gh)
	ctx := t.Context()
	for _, ref := range []string{"4", "#4", "feat", gh.URL + "/acme/fleet/pull/4"} {
		pr, err := c.FindPullRequest(ctx, repo, ref)
		require.NoError(t, err, ref)
		require.Equal(t, github.PullRequest{Number: 4, Title: "", HTMLURL: gh.URL + "/acme/fleet/pull/4", State: "open",
			HeadRef: "feat", HeadSHA: "abc", CloneURL: "https://fork/x.git"}, pr)
	}
	_, err := c.FindPullRequest(ctx, repo, "nope")
	require.ErrorContains(t, err, "--github-ref nope: no open pull request of acme/fleet has that head branch")
	_, err = c.FindPullRequest(ctx, repo, gh.URL+"/other/repo/pull/4")
	require.ErrorContains(t, err, "is a pull request of other/repo, but the Kustomization's source is acme/fleet")
	_, err = c.FindPullRequest(ctx, repo, "99")
	require.ErrorContains(t, err, "get pull request acme/fleet#99")

	bad, err := github.New(gh.APIURL(), &http.Client{Transport: github.Transport(github.StaticToken("wrong"), nil)})
	require.NoError(t, err)
	_, err = bad.PullRequest(ctx, repo, 4)
	require.ErrorContains(t, err, "401 Bad credentials")
}

// fencesBalanced reports whether every ``` fence in s is closed.
func fencesBalanced(s string) bool {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "```") {
			n++
		}
	}
	return n%2 == 0
}

func TestUpsertCommentSplitsAndReplacesAcrossPages(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.SetPullRequest(githubtest.PullRequest{Owner: "acme", Repo: "fleet", Number: 1, HeadRef: "x", HeadSHA: "a"})
	for range 2*githubtest.PerPage + 2 {
		gh.AddComment(1, "someone else")
	}
	c := newClient(t, gh)
	ctx := t.Context()
	marker := "kubechat flux-diff cluster=c kustomization=ns/apps"

	// A diff past GitHub's limit: several comments, each within it, fences balanced.
	var big strings.Builder
	big.WriteString("### Diff\n\n```diff\n")
	for big.Len() < 150_000 {
		big.WriteString("+  a line of a large manifest that goes on and on\n")
	}
	big.WriteString("```\n")
	url, err := c.UpsertComment(ctx, repo, 1, marker, big.String())
	require.NoError(t, err)
	require.Contains(t, url, "#issuecomment-")
	ours := func() []githubtest.Comment {
		var out []githubtest.Comment
		for _, cm := range gh.Comments(1) {
			if strings.HasPrefix(cm.Body, "<!-- "+marker+" part ") {
				out = append(out, cm)
			}
		}
		return out
	}
	parts := ours()
	require.Len(t, parts, 3)
	for i, p := range parts {
		require.LessOrEqual(t, len([]rune(p.Body)), github.MaxCommentChars)
		require.True(t, fencesBalanced(p.Body), "part %d", i+1)
		require.True(t, strings.HasPrefix(p.Body, "<!-- "+marker+" part "+string(rune('1'+i))+"/3 -->\n"))
	}

	// A smaller diff later edits the first part in place and removes the rest.
	_, err = c.UpsertComment(ctx, repo, 1, marker, "no changes")
	require.NoError(t, err)
	now := ours()
	require.Len(t, now, 1)
	require.Equal(t, parts[0].ID, now[0].ID)
	require.Equal(t, "<!-- "+marker+" part 1/1 -->\nno changes", now[0].Body)
	require.Len(t, gh.Comments(1), 2*githubtest.PerPage+3, "other comments are left alone")

	// Another Kustomization gets its own comment.
	_, err = c.UpsertComment(ctx, repo, 1, "kubechat flux-diff cluster=c kustomization=ns/other", "x")
	require.NoError(t, err)
	require.Len(t, ours(), 1)
	require.Len(t, gh.Comments(1), 2*githubtest.PerPage+4)
}

func TestApproveOnlyAtTheDiffedCommit(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.SetPullRequest(githubtest.PullRequest{Owner: "acme", Repo: "fleet", Number: 2, HeadRef: "x", HeadSHA: "sha-1"})
	c := newClient(t, gh)
	_, err := c.Approve(t.Context(), repo, 2, "sha-1", "ok")
	require.NoError(t, err)
	require.Equal(t, []githubtest.Review{{Number: 2, CommitID: "sha-1", Event: "APPROVE", Body: "ok"}}, gh.Reviews())

	gh.SetHead("acme", "fleet", 2, "sha-2")
	pr, err := c.Approve(t.Context(), repo, 2, "sha-1", "ok")
	require.True(t, errors.Is(err, github.ErrHeadMoved), err)
	require.Equal(t, "sha-2", pr.HeadSHA)
	require.Len(t, gh.Reviews(), 1)
}

func TestAppInstallationTokens(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	parsed, err := github.ParseAppKey(keyPEM)
	require.NoError(t, err)
	_, err = github.ParseAppKey([]byte("not a key"))
	require.ErrorContains(t, err, "github app private key")

	for _, tc := range []struct {
		name   string
		ttl    time.Duration
		minted int
	}{
		// A token good for an hour is reused.
		{"cached", time.Hour, 1},
		// A token within the refresh margin of its expiry is replaced.
		{"refreshed before expiry", time.Minute, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh := githubtest.New(t, "")
			gh.SetPullRequest(githubtest.PullRequest{Owner: "acme", Repo: "fleet", Number: 3, HeadRef: "x", HeadSHA: "s"})
			gh.EnableApp(42, 7, &key.PublicKey, tc.ttl)
			ts, err := github.AppToken(gh.APIURL(), github.App{ID: 42, InstallationID: 7, PrivateKey: parsed}, nil)
			require.NoError(t, err)
			c, err := github.New(gh.APIURL(), &http.Client{Transport: github.Transport(ts, nil)})
			require.NoError(t, err)
			for range 3 {
				_, err := c.PullRequest(t.Context(), repo, 3)
				require.NoError(t, err)
			}
			require.Equal(t, tc.minted, gh.Minted())
		})
	}

	// A JWT signed by another key gets no token.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	gh := githubtest.New(t, "")
	gh.EnableApp(42, 7, &other.PublicKey, time.Hour)
	ts, err := github.AppToken(gh.APIURL(), github.App{ID: 42, InstallationID: 7, PrivateKey: parsed}, nil)
	require.NoError(t, err)
	_, err = ts(t.Context())
	require.ErrorContains(t, err, "github app installation 7 token")
}

func TestNewRefusesABadBaseURL(t *testing.T) {
	_, err := github.New("ftp://x", nil)
	require.ErrorContains(t, err, `github base URL "ftp://x"`)
}

// TestOpenIssueFindsTheOpenOne: the open issue with the marker is found
// across pages of open issues (pull requests among them), one without the
// configured labels is not, a closed one is not, and nothing is created
// for a body past GitHub's limit.
func TestOpenIssueFindsTheOpenOne(t *testing.T) {
	gh := githubtest.New(t, token)
	c := newClient(t, gh)
	ctx := t.Context()
	ops := github.Repo{Owner: "acme", Name: "ops"}
	gh.SetPullRequest(githubtest.PullRequest{Owner: "acme", Repo: "ops", Number: 1, HeadRef: "x", HeadSHA: "abc"})
	labels := []string{"kubechat", "incident"}

	first, created, err := c.OpenIssue(ctx, ops, "kubechat-issue one", "one", "body one", labels)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, 2, first.Number, "issues and pull requests share numbers")
	for i := range 2 * githubtest.PerPage {
		_, created, err := c.OpenIssue(ctx, ops, fmt.Sprintf("kubechat-issue n%d", i), "n", "body", labels)
		require.NoError(t, err)
		require.True(t, created)
	}
	again, created, err := c.OpenIssue(ctx, ops, "kubechat-issue one", "one", "body one", labels)
	require.NoError(t, err)
	require.False(t, created, "found on the last page of open issues, newest first")
	require.Equal(t, first, again)
	require.Len(t, gh.Issues(), 1+2*githubtest.PerPage)
	require.True(t, strings.HasPrefix(gh.Issues()[0].Body, "<!-- kubechat-issue one -->\nbody one"))
	require.Equal(t, labels, gh.Issues()[0].Labels)

	// Without the configured labels, an issue is not one of ours.
	unlabelled, created, err := c.OpenIssue(ctx, ops, "kubechat-issue two", "two", "body", nil)
	require.NoError(t, err)
	require.True(t, created)
	labelled, created, err := c.OpenIssue(ctx, ops, "kubechat-issue two", "two", "body", labels)
	require.NoError(t, err)
	require.True(t, created)
	require.NotEqual(t, unlabelled.Number, labelled.Number)

	// A closed issue is history: the next one is new.
	gh.CloseIssue("acme", "ops", first.Number)
	next, created, err := c.OpenIssue(ctx, ops, "kubechat-issue one", "one", "body one", labels)
	require.NoError(t, err)
	require.True(t, created)
	require.NotEqual(t, first.Number, next.Number)

	n := len(gh.Issues())
	_, _, err = c.OpenIssue(ctx, ops, "kubechat-issue big", "big", strings.Repeat("x", github.MaxIssueChars), labels)
	require.ErrorContains(t, err, "GitHub takes at most 65536")
	_, _, err = c.OpenIssue(ctx, ops, "bad -->", "t", "b", labels)
	require.ErrorContains(t, err, "issue marker")
	require.Len(t, gh.Issues(), n, "nothing created")

	r, err := github.ParseRepo("acme/ops")
	require.NoError(t, err)
	require.Equal(t, ops, r)
	for _, bad := range []string{"acme", "acme/ops/x", "/acme/ops", "acme/ops/", "acme/ops.git", ""} {
		_, err := github.ParseRepo(bad)
		require.Error(t, err, bad)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	resp := func(code int, h map[string]string) error {
		r := &http.Response{StatusCode: code, Header: http.Header{}, Request: &http.Request{Method: http.MethodGet, URL: &url.URL{}}}
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return &gh.ErrorResponse{Response: r}
	}
	for name, tc := range map[string]struct {
		err  error
		wait time.Duration
		ok   bool
	}{
		"429 with Retry-After":        {resp(429, map[string]string{"Retry-After": "30"}), 30 * time.Second, true},
		"403 with Retry-After":        {resp(403, map[string]string{"Retry-After": "5"}), 5 * time.Second, true},
		"403 primary limit exhausted": {resp(403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000120"}), 2 * time.Minute, true},
		"429 saying nothing":          {resp(429, nil), time.Minute, true},
		"403 forbidden":               {resp(403, nil), 0, false},
		"404":                         {resp(404, map[string]string{"Retry-After": "30"}), 0, false},
		"rate limit error":            {&gh.RateLimitError{Rate: gh.Rate{Reset: gh.Timestamp{Time: now.Add(time.Hour)}}}, time.Hour, true},
		"secondary limit error":       {&gh.AbuseRateLimitError{RetryAfter: func() *time.Duration { d := 10 * time.Second; return &d }()}, 10 * time.Second, true},
		"not GitHub's":                {errors.New("connection refused"), 0, false},
	} {
		t.Run(name, func(t *testing.T) {
			wait, ok := github.RetryAfter(fmt.Errorf("list: %w", tc.err), now)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.wait, wait)
		})
	}
}
