// Package githubtest is a loopback fake of the GitHub REST API, shaped after
// its documented payloads, so that go-github runs unchanged against it:
// pull requests (get; list, open or closed, sorted, with Link pagination and
// an ETag that a matching If-None-Match turns into a 304, which costs no
// rate limit; files with Link pagination), issues (list a repository's
// with state and labels filters and Link pagination, pull requests
// included as GitHub lists them; create), issue comments
// (list with Link pagination, create, edit, delete), pull request reviews
// (create), commit statuses (create) and GitHub App installation tokens.
// It records comments, reviews and statuses for assertions, and signs
// webhook deliveries as GitHub does (Deliver).
package githubtest

import (
	"cmp"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// PerPage is the fake's largest page of comments (GitHub's is 100); small,
// so that tests cross pages.
const PerPage = 5

// PullRequest is a pull request the fake serves.
type PullRequest struct {
	Owner, Repo string
	Number      int
	Title       string
	State       string // "open" by default
	HeadRef     string
	HeadSHA     string
	// CloneURL is the head repository's clone URL.
	CloneURL string
	// Files are the paths the pull request changes.
	Files []string
	// MergeSHA is the merge commit of a merged pull request (see Merge).
	MergeSHA string

	updated time.Time
}

// Status is a commit status that was set.
type Status struct {
	Owner, Repo string
	SHA         string
	Context     string
	State       string
	Description string
	TargetURL   string
}

// Comment is an issue comment.
type Comment struct {
	ID     int64
	Number int
	Body   string
}

// Review is a submitted pull request review.
type Review struct {
	Number   int
	CommitID string
	Event    string
	Body     string
}

// Issue is an issue that was created.
type Issue struct {
	Owner, Repo string
	Number      int
	Title       string
	Body        string
	Labels      []string
	State       string
}

// Server is the fake API.
type Server struct {
	*httptest.Server
	// Token is the bearer token requests must carry, unless an app is set.
	Token string

	mu       sync.Mutex
	prs      map[string]*PullRequest // by owner/repo#n
	comments []*Comment
	issues   []*Issue
	reviews  []Review
	statuses []Status
	nextID   int64
	// app auth
	appID, installationID int64
	appKey                *rsa.PublicKey
	installTokens         map[string]time.Time
	tokenTTL              time.Duration
	minted                int
	// clock stamps each change of a pull request, a second apart.
	clock time.Time
	// list requests answered 200 and 304; the primary rate limit left.
	listed, notModified int
	remaining           int
	// throttle answers the next list request 429 with this Retry-After.
	throttle time.Duration
}

// RateLimit is the fake's primary rate limit per hour, as GitHub's for a token.
const RateLimit = 5000

// New starts a fake on loopback; it stops with t.
func New(t testing.TB, token string) *Server {
	s := &Server{Token: token, prs: map[string]*PullRequest{}, nextID: 1000, installTokens: map[string]time.Time{},
		clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), remaining: RateLimit}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// APIURL is the API base URL to configure, as for GitHub Enterprise.
func (s *Server) APIURL() string { return s.Server.URL + "/api/v3/" }

// EnableApp makes the fake accept installation tokens minted for app id's
// installation with a JWT signed by key; each token lives for ttl.
func (s *Server) EnableApp(id, installationID int64, key *rsa.PublicKey, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appID, s.installationID, s.appKey, s.tokenTTL = id, installationID, key, ttl
}

// Minted is how many installation tokens were issued.
func (s *Server) Minted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.minted
}

// SetPullRequest adds or replaces a pull request.
func (s *Server) SetPullRequest(pr PullRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pr.State == "" {
		pr.State = "open"
	}
	pr.updated = s.tick()
	s.prs[fmt.Sprintf("%s/%s#%d", pr.Owner, pr.Repo, pr.Number)] = &pr
}

// SetHead moves a pull request's head, as a push to its branch does.
func (s *Server) SetHead(owner, repo string, number int, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pr := s.prs[fmt.Sprintf("%s/%s#%d", owner, repo, number)]; pr != nil {
		pr.HeadSHA, pr.updated = sha, s.tick()
	}
}

// Merge merges a pull request at commit sha, closing it.
func (s *Server) Merge(owner, repo string, number int, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pr := s.prs[fmt.Sprintf("%s/%s#%d", owner, repo, number)]; pr != nil {
		pr.State, pr.MergeSHA, pr.updated = "closed", sha, s.tick()
	}
}

// Touch updates a pull request without changing its head or state, as a
// comment or a label does.
func (s *Server) Touch(owner, repo string, number int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pr := s.prs[fmt.Sprintf("%s/%s#%d", owner, repo, number)]; pr != nil {
		pr.updated = s.tick()
	}
}

// tick advances the fake's clock by a second and returns it.
func (s *Server) tick() time.Time {
	s.clock = s.clock.Add(time.Second)
	return s.clock
}

// ListCounts are how many list-pull-requests requests were answered with
// content (200) and as not modified (304).
func (s *Server) ListCounts() (ok, notModified int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listed, s.notModified
}

// Throttle answers the next list-pull-requests request 429 with
// Retry-After d, as GitHub's secondary rate limit does.
func (s *Server) Throttle(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = d
}

// AddFiles adds paths to the files pull request number changes, as a push does.
func (s *Server) AddFiles(owner, repo string, number int, paths ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pr := s.prs[fmt.Sprintf("%s/%s#%d", owner, repo, number)]; pr != nil {
		for _, p := range paths {
			if !slices.Contains(pr.Files, p) {
				pr.Files = append(pr.Files, p)
			}
		}
		pr.updated = s.tick()
	}
}

// Statuses are the commit statuses set so far, oldest first.
func (s *Server) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses)
}

// StatusesOf are the commit statuses set on sha, oldest first.
func (s *Server) StatusesOf(sha string) []Status {
	return slices.DeleteFunc(s.Statuses(), func(st Status) bool { return st.SHA != sha })
}

// AddComment posts a comment as someone else would.
func (s *Server) AddComment(number int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.comments = append(s.comments, &Comment{ID: s.nextID, Number: number, Body: body})
}

// Comments are the comments on pull request number, oldest first.
func (s *Server) Comments(number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.comments {
		if c.Number == number {
			out = append(out, *c)
		}
	}
	return out
}

// CommentsWith are the comments on pull request number whose body
// contains marker, oldest first.
func (s *Server) CommentsWith(number int, marker string) []Comment {
	return slices.DeleteFunc(s.Comments(number), func(c Comment) bool { return !strings.Contains(c.Body, marker) })
}

// Issues are the issues created so far, oldest first.
func (s *Server) Issues() []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Issue
	for _, is := range s.issues {
		c := *is
		c.Labels = slices.Clone(is.Labels)
		out = append(out, c)
	}
	return out
}

// CloseIssue closes issue number of owner/repo, as a person would.
func (s *Server) CloseIssue(owner, repo string, number int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, is := range s.issues {
		if is.Owner == owner && is.Repo == repo && is.Number == number {
			is.State = "closed"
		}
	}
}

// Reviews are the reviews submitted so far.
func (s *Server) Reviews() []Review {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reviews)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p, ok := strings.CutPrefix(r.URL.Path, "/api/v3")
	if !ok {
		httpError(w, http.StatusNotFound, "Not Found")
		return
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) == 4 && parts[0] == "app" && parts[1] == "installations" && parts[3] == "access_tokens" && r.Method == http.MethodPost {
		s.accessToken(w, r, parts[2])
		return
	}
	if !s.authorized(r) {
		httpError(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(parts) < 4 || parts[0] != "repos" {
		httpError(w, http.StatusNotFound, "Not Found")
		return
	}
	owner, repo, rest := parts[1], parts[2], parts[3:]
	switch {
	case len(rest) == 1 && rest[0] == "pulls" && r.Method == http.MethodGet:
		s.listPulls(w, r, owner, repo)
	case len(rest) == 2 && rest[0] == "pulls" && r.Method == http.MethodGet:
		pr := s.pr(owner, repo, rest[1])
		if pr == nil {
			httpError(w, http.StatusNotFound, "Not Found")
			return
		}
		writeJSON(w, http.StatusOK, s.prJSON(pr))
	case len(rest) == 3 && rest[0] == "pulls" && rest[2] == "files" && r.Method == http.MethodGet:
		s.listFiles(w, r, owner, repo, rest[1])
	case len(rest) == 2 && rest[0] == "statuses" && r.Method == http.MethodPost:
		s.createStatus(w, r, owner, repo, rest[1])
	case len(rest) == 3 && rest[0] == "pulls" && rest[2] == "reviews" && r.Method == http.MethodPost:
		s.createReview(w, r, owner, repo, rest[1])
	case len(rest) == 1 && rest[0] == "issues" && r.Method == http.MethodGet:
		s.listIssues(w, r, owner, repo)
	case len(rest) == 1 && rest[0] == "issues" && r.Method == http.MethodPost:
		s.createIssue(w, r, owner, repo)
	case len(rest) == 3 && rest[0] == "issues" && rest[2] == "comments" && r.Method == http.MethodGet:
		s.listComments(w, r, owner, repo, rest[1])
	case len(rest) == 3 && rest[0] == "issues" && rest[2] == "comments" && r.Method == http.MethodPost:
		s.createComment(w, r, owner, repo, rest[1])
	case len(rest) == 3 && rest[0] == "issues" && rest[1] == "comments" && r.Method == http.MethodPatch:
		s.editComment(w, r, owner, repo, rest[2])
	case len(rest) == 3 && rest[0] == "issues" && rest[1] == "comments" && r.Method == http.MethodDelete:
		s.deleteComment(w, rest[2])
	default:
		httpError(w, http.StatusNotFound, "Not Found")
	}
}

func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(r.Header.Get("Authorization"), "token ")
	}
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.installTokens[tok]; ok {
		return time.Now().Before(exp)
	}
	return s.Token != "" && tok == s.Token
}

// accessToken mints an installation token for a valid app JWT.
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.appKey == nil || id != strconv.FormatInt(s.installationID, 10) {
		httpError(w, http.StatusNotFound, "Not Found")
		return
	}
	raw, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return s.appKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuedAt(), jwt.WithExpirationRequired())
	if err != nil || claims.Issuer != strconv.FormatInt(s.appID, 10) {
		httpError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	}
	s.minted++
	tok := fmt.Sprintf("ghs_fake%d", s.minted)
	exp := time.Now().Add(s.tokenTTL)
	s.installTokens[tok] = exp
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "expires_at": exp.UTC().Format(time.RFC3339)})
}

func (s *Server) pr(owner, repo, number string) *PullRequest {
	return s.prs[fmt.Sprintf("%s/%s#%s", owner, repo, number)]
}

func (s *Server) prJSON(pr *PullRequest) map[string]any {
	html := fmt.Sprintf("%s/%s/%s/pull/%d", s.Server.URL, pr.Owner, pr.Repo, pr.Number)
	var mergedAt, mergeSHA any
	if pr.MergeSHA != "" {
		mergedAt, mergeSHA = pr.updated.Format(time.RFC3339), pr.MergeSHA
	}
	return map[string]any{
		"updated_at":       pr.updated.Format(time.RFC3339),
		"merged_at":        mergedAt,
		"merge_commit_sha": mergeSHA,
		"number":           pr.Number,
		"title":            pr.Title,
		"state":            pr.State,
		"html_url":         html,
		"url":              fmt.Sprintf("%s/api/v3/repos/%s/%s/pulls/%d", s.Server.URL, pr.Owner, pr.Repo, pr.Number),
		"head": map[string]any{
			"ref": pr.HeadRef, "sha": pr.HeadSHA, "label": pr.Owner + ":" + pr.HeadRef,
			"repo": map[string]any{"name": pr.Repo, "full_name": pr.Owner + "/" + pr.Repo, "clone_url": pr.CloneURL},
		},
		"base": map[string]any{"ref": "main", "repo": map[string]any{"name": pr.Repo, "full_name": pr.Owner + "/" + pr.Repo}},
	}
}

// listPulls lists pull requests as GitHub does: state open (the
// default), closed or all; sort created (the default) or updated,
// direction desc (the default) or asc; paginated. Each page carries an
// ETag of its content and the rate limit headers; a request whose
// If-None-Match is the page's ETag gets 304 with no body and leaves the
// rate limit as it was.
func (s *Server) listPulls(w http.ResponseWriter, r *http.Request, owner, repo string) {
	if s.throttle > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(s.throttle.Seconds())))
		s.throttle = 0
		httpError(w, http.StatusTooManyRequests, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
		return
	}
	q := r.URL.Query()
	state := cmp.Or(q.Get("state"), "open")
	var all []*PullRequest
	for _, pr := range s.prs {
		if pr.Owner == owner && pr.Repo == repo && (state == "all" || pr.State == state) {
			all = append(all, pr)
		}
	}
	slices.SortFunc(all, func(a, b *PullRequest) int {
		c := a.Number - b.Number // numbers grow with creation
		if q.Get("sort") == "updated" {
			c = cmp.Or(a.updated.Compare(b.updated), c)
		}
		if q.Get("direction") != "asc" {
			c = -c
		}
		return c
	})
	rec := httptest.NewRecorder()
	out := page(s, rec, r, all, s.prJSON)
	body, _ := json.Marshal(out)
	sum := sha256.Sum256(append(body, rec.Header().Get("Link")...))
	etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
	w.Header().Set("ETag", etag)
	if l := rec.Header().Get("Link"); l != "" {
		w.Header().Set("Link", l)
	}
	if r.Header.Get("If-None-Match") == etag {
		s.notModified++
		s.rateHeaders(w)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.listed++
	s.remaining--
	s.rateHeaders(w)
	writeJSON(w, http.StatusOK, out)
}

// RateRemaining is what is left of the fake's primary rate limit.
func (s *Server) RateRemaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remaining
}

func (s *Server) rateHeaders(w http.ResponseWriter) {
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(RateLimit))
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(s.remaining))
	w.Header().Set("X-RateLimit-Used", strconv.Itoa(RateLimit-s.remaining))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	w.Header().Set("X-RateLimit-Resource", "core")
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request, owner, repo, number string) {
	if s.pr(owner, repo, number) == nil {
		httpError(w, http.StatusNotFound, "Not Found")
		return
	}
	n, _ := strconv.Atoi(number)
	var all []*Comment
	for _, c := range s.comments {
		if c.Number == n {
			all = append(all, c)
		}
	}
	writeJSON(w, http.StatusOK, page(s, w, r, all, func(c *Comment) map[string]any { return s.commentJSON(owner, repo, c) }))
}

func (s *Server) listFiles(w http.ResponseWriter, r *http.Request, owner, repo, number string) {
	pr := s.pr(owner, repo, number)
	if pr == nil {
		httpError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, page(s, w, r, pr.Files, func(f string) map[string]any {
		return map[string]any{"filename": f, "status": "modified"}
	}))
}

func (s *Server) createStatus(w http.ResponseWriter, r *http.Request, owner, repo, sha string) {
	var b struct {
		State       string `json:"state"`
		Context     string `json:"context"`
		Description string `json:"description"`
		TargetURL   string `json:"target_url"`
	}
	if !decodeInto(w, r, &b) {
		return
	}
	if !slices.Contains([]string{"pending", "success", "failure", "error"}, b.State) || len([]rune(b.Description)) > 140 {
		httpError(w, http.StatusUnprocessableEntity, "Validation Failed: state or description")
		return
	}
	if b.Context == "" {
		b.Context = "default"
	}
	st := Status{Owner: owner, Repo: repo, SHA: sha, Context: b.Context, State: b.State, Description: b.Description, TargetURL: b.TargetURL}
	s.statuses = append(s.statuses, st)
	writeJSON(w, http.StatusCreated, map[string]any{"id": len(s.statuses), "state": st.State, "context": st.Context,
		"description": st.Description, "target_url": st.TargetURL})
}

// page serves one page of all as GitHub paginates: per_page (at most
// PerPage), page, and a Link header to the next page.
func page[T any](s *Server, w http.ResponseWriter, r *http.Request, all []T, render func(T) map[string]any) []map[string]any {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 || per > PerPage {
		per = PerPage
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	start, end := min((page-1)*per, len(all)), min(page*per, len(all))
	if end < len(all) {
		// The Link header, as GitHub paginates: go-github reads NextPage from it.
		next := *r.URL
		q := next.Query()
		q.Set("page", strconv.Itoa(page+1))
		q.Set("per_page", strconv.Itoa(per))
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, s.Server.URL, next.RequestURI()))
	}
	out := []map[string]any{}
	for _, c := range all[start:end] {
		out = append(out, render(c))
	}
	return out
}

func (s *Server) commentJSON(owner, repo string, c *Comment) map[string]any {
	return map[string]any{"id": c.ID, "body": c.Body,
		"html_url": fmt.Sprintf("%s/%s/%s/pull/%d#issuecomment-%d", s.Server.URL, owner, repo, c.Number, c.ID)}
}

type bodyJSON struct {
	Body     *string `json:"body"`
	CommitID string  `json:"commit_id"`
	Event    string  `json:"event"`
}

func decode(w http.ResponseWriter, r *http.Request) (bodyJSON, bool) {
	var b bodyJSON
	return b, decodeInto(w, r, &b)
}

// decodeInto reads r's JSON body (up to 1 MiB) into v; on a bad body it
// answers 400 as GitHub does and reports false.
func decodeInto(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "Problems parsing JSON")
		return false
	}
	return true
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request, owner, repo, number string) {
	b, ok := decode(w, r)
	if !ok {
		return
	}
	if s.pr(owner, repo, number) == nil {
		httpError(w, http.StatusNotFound, "Not Found")
		return
	}
	if b.Body == nil || len([]rune(*b.Body)) > 65536 {
		httpError(w, http.StatusUnprocessableEntity, "Validation Failed: body is missing or too long (maximum is 65536 characters)")
		return
	}
	n, _ := strconv.Atoi(number)
	s.nextID++
	c := &Comment{ID: s.nextID, Number: n, Body: *b.Body}
	s.comments = append(s.comments, c)
	writeJSON(w, http.StatusCreated, s.commentJSON(owner, repo, c))
}

func (s *Server) editComment(w http.ResponseWriter, r *http.Request, owner, repo, id string) {
	b, ok := decode(w, r)
	if !ok {
		return
	}
	for _, c := range s.comments {
		if strconv.FormatInt(c.ID, 10) == id {
			if b.Body == nil || len([]rune(*b.Body)) > 65536 {
				httpError(w, http.StatusUnprocessableEntity, "Validation Failed: body is missing or too long (maximum is 65536 characters)")
				return
			}
			c.Body = *b.Body
			writeJSON(w, http.StatusOK, s.commentJSON(owner, repo, c))
			return
		}
	}
	httpError(w, http.StatusNotFound, "Not Found")
}

func (s *Server) deleteComment(w http.ResponseWriter, id string) {
	for i, c := range s.comments {
		if strconv.FormatInt(c.ID, 10) == id {
			s.comments = slices.Delete(s.comments, i, i+1)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	httpError(w, http.StatusNotFound, "Not Found")
}

func (s *Server) createReview(w http.ResponseWriter, r *http.Request, owner, repo, number string) {
	b, ok := decode(w, r)
	if !ok {
		return
	}
	pr := s.pr(owner, repo, number)
	if pr == nil {
		httpError(w, http.StatusNotFound, "Not Found")
		return
	}
	if b.Event != "APPROVE" && b.Event != "COMMENT" && b.Event != "REQUEST_CHANGES" {
		httpError(w, http.StatusUnprocessableEntity, "Validation Failed: event")
		return
	}
	rv := Review{Number: pr.Number, CommitID: b.CommitID, Event: b.Event}
	if b.Body != nil {
		rv.Body = *b.Body
	}
	s.reviews = append(s.reviews, rv)
	state := map[string]string{"APPROVE": "APPROVED", "COMMENT": "COMMENTED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}[b.Event]
	writeJSON(w, http.StatusOK, map[string]any{"id": len(s.reviews), "commit_id": rv.CommitID, "state": state, "body": rv.Body})
}

// listIssues lists a repository's issues as GitHub does: pull requests
// too (with a pull_request key), newest first, filtered by state (default
// open) and by labels (all of them, comma-separated), paginated.
func (s *Server) listIssues(w http.ResponseWriter, r *http.Request, owner, repo string) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var want []string
	if l := q.Get("labels"); l != "" {
		want = strings.Split(l, ",")
	}
	type item struct {
		n      int
		render func() map[string]any
	}
	var all []item
	for _, is := range s.issues {
		if is.Owner == owner && is.Repo == repo && (state == "all" || is.State == state) &&
			!slices.ContainsFunc(want, func(l string) bool { return !slices.Contains(is.Labels, l) }) {
			all = append(all, item{is.Number, func() map[string]any { return s.issueJSON(is) }})
		}
	}
	for _, pr := range s.prs {
		if pr.Owner == owner && pr.Repo == repo && (state == "all" || pr.State == state) && len(want) == 0 {
			all = append(all, item{pr.Number, func() map[string]any {
				html := fmt.Sprintf("%s/%s/%s/pull/%d", s.Server.URL, pr.Owner, pr.Repo, pr.Number)
				return map[string]any{"number": pr.Number, "title": pr.Title, "state": pr.State, "body": "", "html_url": html,
					"pull_request": map[string]any{"html_url": html}}
			}})
		}
	}
	slices.SortFunc(all, func(a, b item) int { return b.n - a.n })
	writeJSON(w, http.StatusOK, page(s, w, r, all, func(it item) map[string]any { return it.render() }))
}

func (s *Server) issueJSON(is *Issue) map[string]any {
	labels := []map[string]any{}
	for _, l := range is.Labels {
		labels = append(labels, map[string]any{"name": l})
	}
	return map[string]any{"number": is.Number, "title": is.Title, "body": is.Body, "state": is.State, "labels": labels,
		"html_url": fmt.Sprintf("%s/%s/%s/issues/%d", s.Server.URL, is.Owner, is.Repo, is.Number),
		"url":      fmt.Sprintf("%s/api/v3/repos/%s/%s/issues/%d", s.Server.URL, is.Owner, is.Repo, is.Number)}
}

// createIssue opens an issue; as on GitHub, issues and pull requests of a
// repository share one sequence of numbers, a title is required and the
// body is at most 65536 characters.
func (s *Server) createIssue(w http.ResponseWriter, r *http.Request, owner, repo string) {
	var b struct {
		Title  string   `json:"title"`
		Body   string   `json:"body"`
		Labels []string `json:"labels"`
	}
	if !decodeInto(w, r, &b) {
		return
	}
	if b.Title == "" || len([]rune(b.Body)) > 65536 {
		httpError(w, http.StatusUnprocessableEntity, "Validation Failed: title is missing or body is too long (maximum is 65536 characters)")
		return
	}
	n := 0
	for _, pr := range s.prs {
		if pr.Owner == owner && pr.Repo == repo {
			n = max(n, pr.Number)
		}
	}
	for _, is := range s.issues {
		if is.Owner == owner && is.Repo == repo {
			n = max(n, is.Number)
		}
	}
	is := &Issue{Owner: owner, Repo: repo, Number: n + 1, Title: b.Title, Body: b.Body, Labels: b.Labels, State: "open"}
	s.issues = append(s.issues, is)
	writeJSON(w, http.StatusCreated, s.issueJSON(is))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"})
}
