// Package githubtest is a loopback fake of the GitHub REST API, shaped after
// its documented payloads, so that go-github runs unchanged against it:
// pull requests (get, list, files with Link pagination), issues (list a
// repository's with state and labels filters and Link pagination, pull
// requests included as GitHub lists them; create), issue comments
// (list with Link pagination, create, edit, delete), pull request reviews
// (create), commit statuses (create) and GitHub App installation tokens.
// It records comments, reviews and statuses for assertions, and signs
// webhook deliveries as GitHub does (Deliver).
package githubtest

import (
	"crypto/rsa"
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
}

// New starts a fake on loopback; it stops with t.
func New(t testing.TB, token string) *Server {
	s := &Server{Token: token, prs: map[string]*PullRequest{}, nextID: 1000, installTokens: map[string]time.Time{}}
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
	s.prs[fmt.Sprintf("%s/%s#%d", pr.Owner, pr.Repo, pr.Number)] = &pr
}

// SetHead moves a pull request's head, as a push to its branch does.
func (s *Server) SetHead(owner, repo string, number int, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pr := s.prs[fmt.Sprintf("%s/%s#%d", owner, repo, number)]; pr != nil {
		pr.HeadSHA = sha
	}
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
	}
}

// Statuses are the commit statuses set so far, oldest first.
func (s *Server) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses)
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
	return map[string]any{
		"number":   pr.Number,
		"title":    pr.Title,
		"state":    pr.State,
		"html_url": html,
		"url":      fmt.Sprintf("%s/api/v3/repos/%s/%s/pulls/%d", s.Server.URL, pr.Owner, pr.Repo, pr.Number),
		"head": map[string]any{
			"ref": pr.HeadRef, "sha": pr.HeadSHA, "label": pr.Owner + ":" + pr.HeadRef,
			"repo": map[string]any{"name": pr.Repo, "full_name": pr.Owner + "/" + pr.Repo, "clone_url": pr.CloneURL},
		},
		"base": map[string]any{"ref": "main", "repo": map[string]any{"name": pr.Repo, "full_name": pr.Owner + "/" + pr.Repo}},
	}
}

func (s *Server) listPulls(w http.ResponseWriter, r *http.Request, owner, repo string) {
	var out []map[string]any
	for _, pr := range s.prs {
		if pr.Owner == owner && pr.Repo == repo && (r.URL.Query().Get("state") != "open" || pr.State == "open") {
			out = append(out, s.prJSON(pr))
		}
	}
	slices.SortFunc(out, func(a, b map[string]any) int { return a["number"].(int) - b["number"].(int) })
	writeJSON(w, http.StatusOK, out)
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
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(data, &b)
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "Problems parsing JSON")
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
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(data, &b)
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "Problems parsing JSON")
		return b, false
	}
	return b, true
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
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(data, &b)
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "Problems parsing JSON")
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
