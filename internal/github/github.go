// Package github is kubechat's GitHub client: it finds a pull request by
// number, URL or branch, keeps one comment per (pull request, subject) up to
// date, and approves a pull request only at the commit that was reviewed.
// It wraps go-github; the API base URL can be set for GitHub Enterprise and
// for tests, and authentication is a token or a GitHub App installation.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/kubechat/kubechat/internal/chat"
)

// MaxCommentChars is GitHub's limit on a comment body.
const MaxCommentChars = 65536

// ErrHeadMoved means the pull request's head is no longer the commit that
// was reviewed.
var ErrHeadMoved = errors.New("the pull request's head moved")

// Client talks to one GitHub (or GitHub Enterprise) API.
type Client struct {
	api *gh.Client
}

// New returns a client for the API at baseURL ("" for api.github.com) that
// authenticates every request through httpClient (see TokenTransport and
// AppTransport). It does not dial.
func New(baseURL string, httpClient *http.Client) (*Client, error) {
	c := gh.NewClient(httpClient)
	if baseURL != "" {
		u, err := url.Parse(baseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("github base URL %q: want an http(s) URL such as https://github.example.com/api/v3/", baseURL)
		}
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		c.BaseURL = u
	}
	return &Client{api: c}, nil
}

// Repo is a GitHub repository.
type Repo struct {
	Owner string
	Name  string
}

func (r Repo) String() string { return r.Owner + "/" + r.Name }

var repoPath = regexp.MustCompile(`^/?([A-Za-z0-9][A-Za-z0-9-]*)/([A-Za-z0-9._-]+?)(?:\.git)?/?$`)

// ParseRepoURL maps a Git URL (https://host/owner/repo(.git), ssh://git@host/owner/repo,
// git@host:owner/repo) to the repository. It does not check the host: a
// GitHub Enterprise or test server has its own.
func ParseRepoURL(raw string) (Repo, error) {
	p := raw
	if rest, ok := strings.CutPrefix(raw, "git@"); ok && !strings.Contains(raw, "://") {
		_, p, _ = strings.Cut(rest, ":")
	} else {
		u, err := url.Parse(raw)
		if err != nil {
			return Repo{}, fmt.Errorf("repository URL %q: %w", raw, err)
		}
		p = u.Path
	}
	m := repoPath.FindStringSubmatch(p)
	if m == nil {
		return Repo{}, fmt.Errorf("repository URL %q does not name an owner/repository", raw)
	}
	return Repo{Owner: m[1], Name: m[2]}, nil
}

// PullRequest is what a diff and its buttons need of a pull request.
type PullRequest struct {
	Number  int
	Title   string
	HTMLURL string
	State   string
	// HeadRef is the head branch, HeadSHA its commit, and CloneURL the
	// repository that holds it (a fork's, for a pull request from a fork).
	HeadRef  string
	HeadSHA  string
	CloneURL string
}

var prURL = regexp.MustCompile(`^https?://[^/]+/([^/]+)/([^/]+)/pull/([0-9]+)/?$`)

// FindPullRequest resolves ref in repo: a number ("12", "#12"), a pull
// request URL (which must be of repo), or the head branch of an open pull
// request.
func (c *Client) FindPullRequest(ctx context.Context, repo Repo, ref string) (PullRequest, error) {
	if ref == "" {
		return PullRequest{}, errors.New("--github-ref: give a pull request number, URL or branch")
	}
	if m := prURL.FindStringSubmatch(ref); m != nil {
		if !strings.EqualFold(m[1], repo.Owner) || !strings.EqualFold(m[2], repo.Name) {
			return PullRequest{}, fmt.Errorf("--github-ref %s is a pull request of %s/%s, but the Kustomization's source is %s", ref, m[1], m[2], repo)
		}
		ref = m[3]
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(ref, "#")); err == nil {
		if n <= 0 {
			return PullRequest{}, fmt.Errorf("--github-ref %s: not a pull request number", ref)
		}
		return c.PullRequest(ctx, repo, n)
	}
	opts := &gh.PullRequestListOptions{State: "open", ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		prs, resp, err := c.api.PullRequests.List(ctx, repo.Owner, repo.Name, opts)
		if err != nil {
			return PullRequest{}, fmt.Errorf("list pull requests of %s: %w", repo, err)
		}
		for _, pr := range prs {
			if pr.GetHead().GetRef() == ref {
				return pullRequest(pr), nil
			}
		}
		if resp.NextPage == 0 {
			return PullRequest{}, fmt.Errorf("--github-ref %s: no open pull request of %s has that head branch", ref, repo)
		}
		opts.Page = resp.NextPage
	}
}

// PullRequest gets pull request number of repo.
func (c *Client) PullRequest(ctx context.Context, repo Repo, number int) (PullRequest, error) {
	pr, _, err := c.api.PullRequests.Get(ctx, repo.Owner, repo.Name, number)
	if err != nil {
		return PullRequest{}, fmt.Errorf("get pull request %s#%d: %w", repo, number, err)
	}
	return pullRequest(pr), nil
}

func pullRequest(pr *gh.PullRequest) PullRequest {
	return PullRequest{
		Number:   pr.GetNumber(),
		Title:    pr.GetTitle(),
		HTMLURL:  pr.GetHTMLURL(),
		State:    pr.GetState(),
		HeadRef:  pr.GetHead().GetRef(),
		HeadSHA:  pr.GetHead().GetSHA(),
		CloneURL: pr.GetHead().GetRepo().GetCloneURL(),
	}
}

// UpsertComment makes body the content of the comments marked with marker
// on pull request number: it finds them through every page of comments,
// edits them in place, creates what is missing and deletes what is left
// over. A body past GitHub's limit is split into several comments with code
// fences balanced. It returns the URL of the first comment.
func (c *Client) UpsertComment(ctx context.Context, repo Repo, number int, marker, body string) (string, error) {
	if strings.ContainsAny(marker, "\n>") || marker == "" {
		return "", fmt.Errorf("comment marker %q: want one line without '>'", marker)
	}
	open := "<!-- " + marker
	// Room for the hidden marker line that starts each part.
	pieces := chat.Split(body, MaxCommentChars-len(open)-40)
	existing, err := c.markedComments(ctx, repo, number, open)
	if err != nil {
		return "", err
	}
	var first string
	for i, piece := range pieces {
		text := fmt.Sprintf("%s part %d/%d -->\n%s", open, i+1, len(pieces), piece)
		var got *gh.IssueComment
		if i < len(existing) {
			got, _, err = c.api.Issues.EditComment(ctx, repo.Owner, repo.Name, existing[i].GetID(), &gh.IssueComment{Body: &text})
		} else {
			got, _, err = c.api.Issues.CreateComment(ctx, repo.Owner, repo.Name, number, &gh.IssueComment{Body: &text})
		}
		if err != nil {
			return "", fmt.Errorf("write comment %d/%d on %s#%d: %w", i+1, len(pieces), repo, number, err)
		}
		if i == 0 {
			first = got.GetHTMLURL()
		}
	}
	for _, old := range existing[min(len(pieces), len(existing)):] {
		if _, err := c.api.Issues.DeleteComment(ctx, repo.Owner, repo.Name, old.GetID()); err != nil {
			return "", fmt.Errorf("delete the outdated comment %d on %s#%d: %w", old.GetID(), repo, number, err)
		}
	}
	return first, nil
}

// markedComments lists the comments whose first line starts with open, in
// the order they were posted.
func (c *Client) markedComments(ctx context.Context, repo Repo, number int, open string) ([]*gh.IssueComment, error) {
	var found []*gh.IssueComment
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		comments, resp, err := c.api.Issues.ListComments(ctx, repo.Owner, repo.Name, number, opts)
		if err != nil {
			return nil, fmt.Errorf("list comments of %s#%d: %w", repo, number, err)
		}
		for _, cm := range comments {
			line, _, _ := strings.Cut(cm.GetBody(), "\n")
			if strings.HasPrefix(line, open+" part ") {
				found = append(found, cm)
			}
		}
		if resp.NextPage == 0 {
			return found, nil
		}
		opts.Page = resp.NextPage
	}
}

// Approve approves pull request number at commit sha, with body as the
// review's text. It refuses with ErrHeadMoved, without approving, when the
// pull request's head is no longer sha, and returns the pull request as it
// is now either way.
func (c *Client) Approve(ctx context.Context, repo Repo, number int, sha, body string) (PullRequest, error) {
	pr, err := c.PullRequest(ctx, repo, number)
	if err != nil {
		return PullRequest{}, err
	}
	if pr.State != "" && pr.State != "open" {
		return pr, fmt.Errorf("%s#%d is %s; only an open pull request can be approved", repo, number, pr.State)
	}
	if pr.HeadSHA != sha {
		return pr, fmt.Errorf("%w: the diff was of %s, the head is now %s", ErrHeadMoved, short(sha), short(pr.HeadSHA))
	}
	event := "APPROVE"
	// CommitID makes GitHub bind the review to the diffed commit, whatever
	// is pushed between the check above and this call.
	if _, _, err := c.api.PullRequests.CreateReview(ctx, repo.Owner, repo.Name, number, &gh.PullRequestReviewRequest{
		CommitID: &sha, Body: &body, Event: &event,
	}); err != nil {
		return pr, fmt.Errorf("approve %s#%d: %w", repo, number, err)
	}
	return pr, nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// ChangedFiles lists the paths pull request number changes, through every
// page; a renamed file counts under both its names. GitHub lists at most
// 3000 files of a pull request.
func (c *Client) ChangedFiles(ctx context.Context, repo Repo, number int) ([]string, error) {
	var out []string
	opts := &gh.ListOptions{PerPage: 100}
	for {
		files, resp, err := c.api.PullRequests.ListFiles(ctx, repo.Owner, repo.Name, number, opts)
		if err != nil {
			return nil, fmt.Errorf("list the files of %s#%d: %w", repo, number, err)
		}
		for _, f := range files {
			out = append(out, f.GetFilename())
			if prev := f.GetPreviousFilename(); prev != "" {
				out = append(out, prev)
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// Commit status states.
const (
	StatusPending = "pending"
	StatusSuccess = "success"
	StatusFailure = "failure"
	StatusError   = "error"
)

// SetStatus sets the commit status called name on commit sha: state is
// one of the Status constants, description a line (GitHub keeps 140
// characters), targetURL where its "Details" link leads ("" for none).
func (c *Client) SetStatus(ctx context.Context, repo Repo, sha, name, state, description, targetURL string) error {
	if r := []rune(description); len(r) > 140 {
		description = string(r[:139]) + "…"
	}
	st := &gh.RepoStatus{State: &state, Context: &name, Description: &description}
	if targetURL != "" {
		st.TargetURL = &targetURL
	}
	if _, _, err := c.api.Repositories.CreateStatus(ctx, repo.Owner, repo.Name, sha, st); err != nil {
		return fmt.Errorf("set the status %s of %s@%s: %w", name, repo, short(sha), err)
	}
	return nil
}

// Issue is a GitHub issue.
type Issue struct {
	Number  int
	Title   string
	HTMLURL string
}

// MaxIssueChars is GitHub's limit on an issue's body.
const MaxIssueChars = 65536

// OpenIssue returns the open issue of repo whose body carries marker (a
// hidden comment, "<!-- marker -->"), or creates it with title, body and
// labels: repeating the call with the same marker, after a retry or a
// second click, finds the first issue instead of opening another. created
// says which. Open issues are listed (every page, only those with labels
// when labels are given) rather than searched: GitHub's search index lags
// behind, the issues list does not.
func (c *Client) OpenIssue(ctx context.Context, repo Repo, marker, title, body string, labels []string) (issue Issue, created bool, err error) {
	if strings.ContainsAny(marker, "\n>") || marker == "" {
		return Issue{}, false, fmt.Errorf("issue marker %q: want one line without '>'", marker)
	}
	hidden := "<!-- " + marker + " -->"
	body = hidden + "\n" + body
	if n := len([]rune(body)); n > MaxIssueChars {
		return Issue{}, false, fmt.Errorf("issue body of %d characters: GitHub takes at most %d", n, MaxIssueChars)
	}
	opts := &gh.IssueListByRepoOptions{State: "open", Labels: labels, ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		issues, resp, err := c.api.Issues.ListByRepo(ctx, repo.Owner, repo.Name, opts)
		if err != nil {
			return Issue{}, false, fmt.Errorf("list the open issues of %s: %w", repo, err)
		}
		for _, is := range issues {
			if !is.IsPullRequest() && strings.Contains(is.GetBody(), hidden) {
				return issueOf(is), false, nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	req := &gh.IssueRequest{Title: &title, Body: &body}
	if len(labels) > 0 {
		req.Labels = &labels
	}
	is, _, err := c.api.Issues.Create(ctx, repo.Owner, repo.Name, req)
	if err != nil {
		return Issue{}, false, fmt.Errorf("create an issue in %s: %w", repo, err)
	}
	return issueOf(is), true, nil
}

func issueOf(is *gh.Issue) Issue {
	return Issue{Number: is.GetNumber(), Title: is.GetTitle(), HTMLURL: is.GetHTMLURL()}
}

// ParseRepo reads "owner/name".
func ParseRepo(s string) (Repo, error) {
	m := repoPath.FindStringSubmatch(s)
	if m == nil || m[1]+"/"+m[2] != s {
		return Repo{}, fmt.Errorf("%q is not a repository as owner/name", s)
	}
	return Repo{Owner: m[1], Name: m[2]}, nil
}

// PullRequestPage is one page of a repository's pull requests, open and
// closed, the most recently updated first.
type PullRequestPage struct {
	PullRequests []*gh.PullRequest
	// ETag identifies the page's content, for a conditional request.
	ETag string
	// NotModified is set when the page still has the ETag asked with: it
	// came back empty (304), and GitHub did not count it against the rate
	// limit.
	NotModified bool
	// Next is the next page's number, 0 on the last.
	Next int
}

// RecentPullRequests gets page (from 1) of repo's pull requests, most
// recently updated first, 100 a page. With etag (the ETag of the page's
// previous answer) the request is conditional: an unchanged page comes
// back NotModified.
func (c *Client) RecentPullRequests(ctx context.Context, repo Repo, page int, etag string) (PullRequestPage, error) {
	u := fmt.Sprintf("repos/%s/%s/pulls?state=all&sort=updated&direction=desc&per_page=100&page=%d",
		url.PathEscape(repo.Owner), url.PathEscape(repo.Name), max(page, 1))
	req, err := c.api.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return PullRequestPage{}, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	var out PullRequestPage
	resp, err := c.api.Do(ctx, req, &out.PullRequests)
	if resp != nil && resp.StatusCode == http.StatusNotModified {
		return PullRequestPage{ETag: etag, NotModified: true}, nil
	}
	if err != nil {
		return PullRequestPage{}, fmt.Errorf("list the pull requests of %s: %w", repo, err)
	}
	out.ETag, out.Next = resp.Header.Get("ETag"), resp.NextPage
	return out, nil
}

// RetryAfter tells how long to wait when err is GitHub refusing a request
// for its rate limits: a 403 or 429 with Retry-After (secondary limits), or
// with X-RateLimit-Remaining 0 until X-RateLimit-Reset (primary). A 429
// that says neither means at least a minute, as GitHub documents. ok is
// false for other errors.
func RetryAfter(err error, now time.Time) (wait time.Duration, ok bool) {
	var rl *gh.RateLimitError
	var abuse *gh.AbuseRateLimitError
	var er *gh.ErrorResponse
	switch {
	case errors.As(err, &rl):
		return max(rl.Rate.Reset.Sub(now), time.Second), true
	case errors.As(err, &abuse) && abuse.RetryAfter != nil:
		return max(*abuse.RetryAfter, time.Second), true
	case errors.As(err, &abuse):
		return time.Minute, true
	case errors.As(err, &er) && er.Response != nil:
		code, h := er.Response.StatusCode, er.Response.Header
		if code != http.StatusForbidden && code != http.StatusTooManyRequests {
			return 0, false
		}
		if s, perr := strconv.Atoi(h.Get("Retry-After")); perr == nil && s >= 0 {
			return max(time.Duration(s)*time.Second, time.Second), true
		}
		if h.Get("X-RateLimit-Remaining") == "0" {
			if reset, perr := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); perr == nil {
				return max(time.Unix(reset, 0).Sub(now), time.Second), true
			}
		}
		if code == http.StatusTooManyRequests {
			return time.Minute, true
		}
	}
	return 0, false
}
