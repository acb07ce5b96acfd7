package github

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/github"
	"github.com/kubechat/kubechat/internal/source/webhook"
)

// Bounds of what the poller reads and remembers of one repository.
const (
	// maxPages is how many pages of 100 pull requests a poll reads at most.
	maxPages = 10
	// keepOpen is how many open pull requests' heads are remembered.
	keepOpen = 1000
	// keepMerged is how many merged pull requests are remembered.
	keepMerged = 200
)

// poller polls repositories' pull requests with conditional requests and
// turns what changed since the previous poll into the pull_request events
// a webhook would have delivered, fed to the same logic (pullRequest).
type poller struct {
	interval time.Duration
	repos    []github.Repo

	// mu serialises the read-modify-write of the state (polls and
	// webhook deliveries).
	mu sync.Mutex
}

// seen is what the poller knows of one repository's pull requests.
type seen struct {
	// ETag of the newest page of pull requests, for If-None-Match.
	ETag string `json:"etag,omitempty"`
	// Since is the newest updated_at read: older pull requests have not
	// changed since.
	Since time.Time `json:"since"`
	// Open is each open pull request's head commit.
	Open map[int]string `json:"open,omitempty"`
	// Merged are the merged pull requests already reported, newest last.
	Merged []int `json:"merged,omitempty"`
}

func newPoller(p *config.GitHubPoll) *poller {
	out := &poller{interval: p.Interval.D()}
	if out.interval == 0 {
		out.interval = config.DefaultPollInterval.D()
	}
	for _, r := range p.Repositories {
		owner, name, _ := strings.Cut(r, "/")
		out.repos = append(out.repos, github.Repo{Owner: owner, Name: name})
	}
	return out
}

// action is the pull_request action that brings pr from what s knows of
// it: opened (or reopened) for an open pull request s does not know,
// synchronize for a new head, closed for a merge not reported yet; "" when
// nothing is to be reported.
func (s *seen) action(pr *gh.PullRequest) string {
	n := pr.GetNumber()
	switch {
	case pr.GetState() == "open":
		head, known := s.Open[n]
		if !known {
			return "opened"
		}
		if head != pr.GetHead().GetSHA() {
			return "synchronize"
		}
	case pr.MergedAt != nil && !slices.Contains(s.Merged, n):
		return "closed"
	}
	return ""
}

// record makes s know pr as it is now, within its bounds.
func (s *seen) record(pr *gh.PullRequest) {
	n := pr.GetNumber()
	if s.Open == nil {
		s.Open = map[int]string{}
	}
	if pr.GetState() == "open" {
		s.Open[n] = pr.GetHead().GetSHA()
		if len(s.Open) > keepOpen {
			delete(s.Open, slices.Min(slices.Collect(maps.Keys(s.Open))))
		}
		return
	}
	delete(s.Open, n)
	if pr.MergedAt != nil && !slices.Contains(s.Merged, n) {
		s.Merged = append(s.Merged, n)
		if len(s.Merged) > keepMerged {
			s.Merged = s.Merged[len(s.Merged)-keepMerged:]
		}
	}
}

// pollKey holds what the poller has seen, by repository.
func (s *Source) pollKey() string { return "github." + s.name + ".poll" }

func (s *Source) loadSeen() map[string]*seen {
	all := map[string]*seen{}
	if v, ok := s.state.Get(s.pollKey()); ok && v != "" {
		if err := json.Unmarshal([]byte(v), &all); err != nil {
			// Start over rather than stop: the next poll takes a new baseline.
			s.log.Error("github poll state unreadable; taking a new baseline", "key", s.pollKey(), "err", err)
			return map[string]*seen{}
		}
	}
	return all
}

func (s *Source) saveSeen(ctx context.Context, all map[string]*seen) error {
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return s.state.Set(ctx, s.pollKey(), string(b))
}

// runPoll polls every interval until ctx is done, waiting longer when
// GitHub asks to. The first poll is at once.
func (s *Source) runPoll(ctx context.Context, emit webhook.Emit) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(max(s.poll.interval, s.pollOnce(ctx, emit)))
	}
}

// pollOnce polls each repository once and returns how long GitHub asked
// to wait before the next request (0 when it did not).
func (s *Source) pollOnce(ctx context.Context, emit webhook.Emit) time.Duration {
	s.poll.mu.Lock()
	defer s.poll.mu.Unlock()
	all := s.loadSeen()
	for _, repo := range s.poll.repos {
		key := strings.ToLower(repo.String())
		cur, changed, err := s.pollRepo(ctx, repo, all[key], emit)
		if changed {
			all[key] = cur
			if serr := s.saveSeen(ctx, all); serr != nil {
				s.log.Error("github poll state not saved; the next poll sees the same changes", "err", serr)
			}
		}
		if err == nil {
			continue
		}
		if wait, limited := github.RetryAfter(err, time.Now()); limited {
			// The next requests would be refused too.
			s.log.Warn("github rate limit: polling waits", "repository", repo.String(), "wait", wait.Round(time.Second).String())
			return wait
		}
		s.log.Error("github poll failed", "repository", repo.String(), "err", err)
	}
	return 0
}

// pollRepo reads repo's pull requests updated since prev (nil: never
// polled) and reports what changed. It returns what it has seen now and
// whether that differs from prev. The first poll of a repository takes a
// baseline and reports nothing. On an error, what was reported is
// recorded and the ETag dropped, so that the next poll reads the rest.
func (s *Source) pollRepo(ctx context.Context, repo github.Repo, prev *seen, emit webhook.Emit) (*seen, bool, error) {
	etag := ""
	if prev != nil {
		etag = prev.ETag
	}
	page, err := s.gh.RecentPullRequests(ctx, repo, 1, etag)
	if err != nil || page.NotModified {
		return prev, false, err
	}
	prs, next := page.PullRequests, page.Next
	for n := 1; next != 0 && n < maxPages; n++ {
		if prev != nil && len(prs) > 0 && prs[len(prs)-1].GetUpdatedAt().Before(prev.Since) {
			break // the rest has not changed
		}
		more, err := s.gh.RecentPullRequests(ctx, repo, next, "")
		if err != nil {
			return prev, false, err
		}
		prs, next = append(prs, more.PullRequests...), more.Next
	}
	cur := &seen{}
	if prev != nil {
		*cur = *prev
		cur.Open = maps.Clone(prev.Open)
		cur.Merged = slices.Clone(prev.Merged)
	}
	since := cur.Since
	// Oldest first: events keep the order of the changes.
	for _, pr := range slices.Backward(prs) {
		updated := pr.GetUpdatedAt().Time
		if prev != nil && updated.Before(prev.Since) {
			continue
		}
		if updated.After(since) {
			since = updated
		}
		action := cur.action(pr)
		if prev != nil && action != "" {
			if _, err := s.pullRequest(ctx, "poll", pollEvent(action, repo, pr), emit); err != nil {
				cur.ETag = ""
				return cur, true, fmt.Errorf("%s#%d: %w", repo, pr.GetNumber(), err)
			}
		}
		cur.record(pr)
	}
	cur.ETag, cur.Since = page.ETag, since
	return cur, true, nil
}

// pollEvent is the pull_request webhook payload GitHub would have sent
// for pr with action.
func pollEvent(action string, repo github.Repo, pr *gh.PullRequest) *gh.PullRequestEvent {
	if pr.MergedAt != nil {
		pr.Merged = gh.Bool(true) // lists leave "merged" out
	}
	return &gh.PullRequestEvent{
		Action:      gh.String(action),
		Number:      pr.Number,
		PullRequest: pr,
		Repo:        &gh.Repository{Name: gh.String(repo.Name), Owner: &gh.User{Login: gh.String(repo.Owner)}},
	}
}

// delivered records a webhook's pull request in the poll state, for the
// polled repositories that have a baseline, and reports whether it is new
// to the poller: a change polling reported already is not reported again.
// The record is kept only once process succeeds.
func (s *Source) delivered(ctx context.Context, p *gh.PullRequestEvent, process func() error) error {
	switch p.GetAction() {
	case "opened", "synchronize", "reopened", "closed":
	default:
		return process() // not a change polling reports
	}
	if s.poll == nil {
		return process()
	}
	repo := github.Repo{Owner: p.GetRepo().GetOwner().GetLogin(), Name: p.GetRepo().GetName()}
	s.poll.mu.Lock()
	defer s.poll.mu.Unlock()
	all := s.loadSeen()
	cur := all[strings.ToLower(repo.String())]
	if cur == nil {
		return process()
	}
	pr := p.GetPullRequest()
	if cur.action(pr) == "" {
		s.log.Debug("github delivery: polling saw this change already", "repository", repo.String(), "number", pr.GetNumber())
		return nil
	}
	if err := process(); err != nil {
		return err
	}
	cur.record(pr)
	return s.saveSeen(ctx, all)
}
