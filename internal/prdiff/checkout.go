package prdiff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"sync"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// Checkout fetches commit sha of the repository at cloneURL into dir, with
// depth 1, and checks it out. token, when set, authenticates over HTTPS.
// At most maxBytes are transferred and checked out.
func Checkout(ctx context.Context, cloneURL, sha, dir, token string, maxBytes int64) error {
	installLimitedTransport()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		return fmt.Errorf("init checkout: %w", err)
	}
	if _, err := repo.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{cloneURL}}); err != nil {
		return fmt.Errorf("add remote %s: %w", cloneURL, err)
	}
	opts := &git.FetchOptions{
		RemoteName: "origin",
		// Fetching the commit by id gets exactly what was diffed, even
		// after the branch moved; GitHub serves any reachable commit.
		RefSpecs: []gitconfig.RefSpec{gitconfig.RefSpec(sha + ":refs/heads/kubechat-diff")},
		Depth:    1,
		Tags:     git.NoTags,
	}
	if token != "" {
		opts.Auth = &githttp.BasicAuth{Username: "x-access-token", Password: token}
	}
	fctx := context.WithValue(ctx, limitKey{}, maxBytes)
	if err := repo.FetchContext(fctx, opts); err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("fetch %s at %s: %w", cloneURL, sha, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return fmt.Errorf("checkout %s: %w", sha, err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(sha), Force: true}); err != nil {
		return fmt.Errorf("checkout %s: %w", sha, err)
	}
	var total int64
	return filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if total += info.Size(); total > maxBytes {
			return fmt.Errorf("the checkout is larger than the limit of %d bytes (settings.maxRepoBytes)", maxBytes)
		}
		return nil
	})
}

// limitKey carries a fetch's byte limit in its context.
type limitKey struct{}

var installOnce sync.Once

// installLimitedTransport makes go-git's HTTP(S) transport stop reading a
// response past the limit in the request's context. go-git keeps one
// transport per scheme for the process; kubechat is its only user.
func installLimitedTransport() {
	installOnce.Do(func() {
		c := githttp.NewClient(&http.Client{Transport: limitedTransport{next: http.DefaultTransport}})
		client.InstallProtocol("http", c)
		client.InstallProtocol("https", c)
	})
}

type limitedTransport struct{ next http.RoundTripper }

func (t limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if limit, ok := req.Context().Value(limitKey{}).(int64); ok && limit > 0 {
		resp.Body = &limitedBody{rc: resp.Body, left: limit, limit: limit}
	}
	return resp, nil
}

type limitedBody struct {
	rc    io.ReadCloser
	left  int64
	limit int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("the repository is larger than the limit of %d bytes (settings.maxRepoBytes)", b.limit)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, fmt.Errorf("the repository is larger than the limit of %d bytes (settings.maxRepoBytes)", b.limit)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
