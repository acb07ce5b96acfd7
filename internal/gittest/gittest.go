// Package gittest serves Git repositories over the smart HTTP protocol on
// loopback with the real git binary (git http-backend behind net/http/cgi),
// and drives the real git to commit and push to them, for tests. Every git
// process is run from an argv, never through a shell.
package gittest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Server serves the bare repositories under Root at URL/<name>.git.
type Server struct {
	*httptest.Server
	Root  string
	git   string
	token atomic.Pointer[string]
	hits  atomic.Int64
}

// NewServer starts a smart HTTP git server on loopback; it stops with t.
// Tests that need git fail clearly when it is not installed.
func NewServer(t testing.TB) *Server {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("gittest: the git binary is needed: %v", err)
	}
	s := &Server{Root: t.TempDir(), git: git}
	h := &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			// Clients may fetch any commit by its id, as GitHub allows.
			"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=uploadpack.allowAnySHA1InWant", "GIT_CONFIG_VALUE_0=true",
		},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if tok := s.token.Load(); tok != nil {
			// As GitHub over HTTPS: any user name, the token as the password.
			if _, pass, ok := r.BasicAuth(); !ok || pass != *tok {
				w.Header().Set("WWW-Authenticate", `Basic realm="gittest"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// Requests counts the requests the server has received.
func (s *Server) Requests() int64 { return s.hits.Load() }

// RequireToken makes the server refuse requests without token as the
// basic-auth password, as a private repository on GitHub does. Pushes
// from Repo carry it too.
func (s *Server) RequireToken(token string) { s.token.Store(&token) }

// RepoURL is the clone URL of repository name.
func (s *Server) RepoURL(name string) string { return s.URL + "/" + name + ".git" }

// Repo is a working copy that pushes to a bare repository of a Server.
type Repo struct {
	t      testing.TB
	Dir    string
	git    string
	name   string
	server *Server
}

// NewRepo creates the bare repository name on s and a working copy of it
// on branch main.
func (s *Server) NewRepo(t testing.TB, name string) *Repo {
	t.Helper()
	bare := filepath.Join(s.Root, name+".git")
	r := &Repo{t: t, Dir: t.TempDir(), git: s.git, name: name, server: s}
	r.run("", "init", "--bare", "--initial-branch=main", bare)
	r.run(bare, "config", "http.receivepack", "true")
	r.run(r.Dir, "init", "--initial-branch=main")
	r.run(r.Dir, "remote", "add", "origin", s.RepoURL(name))
	return r
}

// Write writes files (path relative to the working copy → content),
// creating directories; an empty content deletes the file.
func (r *Repo) Write(files map[string]string) {
	r.t.Helper()
	for p, content := range files {
		full := filepath.Join(r.Dir, p)
		if content == "" {
			if err := os.Remove(full); err != nil {
				r.t.Fatalf("gittest: %v", err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatalf("gittest: %v", err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			r.t.Fatalf("gittest: %v", err)
		}
	}
}

// Commit commits everything on branch (creating it from the current
// commit if needed), pushes it and returns the commit id.
func (r *Repo) Commit(branch, message string) string {
	r.t.Helper()
	r.run(r.Dir, "checkout", "-B", branch)
	r.run(r.Dir, "add", "-A")
	r.run(r.Dir, "commit", "--allow-empty", "-m", message)
	r.run(r.Dir, "push", "--force", "origin", branch)
	return strings.TrimSpace(r.run(r.Dir, "rev-parse", "HEAD"))
}

// Checkout switches the working copy to branch.
func (r *Repo) Checkout(branch string) {
	r.t.Helper()
	r.run(r.Dir, "checkout", branch)
}

func (r *Repo) run(dir string, args ...string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.git, args...)
	cmd.Dir = dir
	env := os.Environ()
	if tok := r.server.token.Load(); tok != nil {
		// The token reaches git through the environment, not its argv.
		env = append(env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader",
			"GIT_CONFIG_VALUE_0=Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("x-access-token:"+*tok)))
	}
	cmd.Env = append(env,
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		r.t.Fatalf("gittest: git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// String names the repository.
func (r *Repo) String() string { return fmt.Sprintf("gittest repo %s", r.name) }
