package prdiff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ssautil "github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubechat/kubechat/internal/github"
)

// BuildFunc renders the objects of a checkout whose root is root, as
// YAML documents. It must read nothing outside root (SecurePath) and run
// no program; it is given the build's deadline in ctx.
type BuildFunc func(ctx context.Context, root string) ([]byte, error)

// Build fetches commit sha of pull request pr of repo into a temporary
// checkout, builds it with build, and returns the objects: all within
// settings.buildTimeout, settings.maxRepoBytes and
// settings.maxManifestBytes. The checkout is removed before it returns,
// and its location never shows in an error.
func (d *Differ) Build(ctx context.Context, repo github.Repo, pr github.PullRequest, sha string, build BuildFunc) ([]*unstructured.Unstructured, error) {
	cloneURL := pr.CloneURL
	if cloneURL == "" {
		return nil, fmt.Errorf("pull request %s#%d has no head repository (was the fork deleted?)", repo, pr.Number)
	}
	dir, err := os.MkdirTemp(d.s.WorkDir, "kubechat-"+d.tool+"-")
	if err != nil {
		return nil, fmt.Errorf("temporary checkout: %w", err)
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "repo")
	bctx, cancel := context.WithTimeout(ctx, d.s.BuildTimeout.D())
	defer cancel()
	token := ""
	if d.token != nil {
		if token, err = d.token(bctx); err != nil {
			return nil, err
		}
	}
	if err := Checkout(bctx, cloneURL, sha, root, token, d.s.MaxRepoBytes); err != nil {
		if errors.Is(bctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("the clone took longer than %s (settings.buildTimeout)", d.s.BuildTimeout.D())
		}
		return nil, err
	}
	type built struct {
		yaml []byte
		err  error
	}
	done := make(chan built, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- built{err: fmt.Errorf("the build panicked: %v", p)}
			}
		}()
		y, err := build(bctx, root)
		done <- built{y, err}
	}()
	var b built
	select {
	case b = <-done:
	case <-bctx.Done():
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("the build took longer than %s (settings.buildTimeout)", d.s.BuildTimeout.D())
	}
	if b.err != nil {
		return nil, errors.New(strings.ReplaceAll(b.err.Error(), root, "<repo>"))
	}
	if int64(len(b.yaml)) > d.s.MaxManifestBytes {
		return nil, fmt.Errorf("the build is %d bytes, past the limit of %d (settings.maxManifestBytes)", len(b.yaml), d.s.MaxManifestBytes)
	}
	objects, err := ssautil.ReadObjects(bytes.NewReader(b.yaml))
	if err != nil {
		return nil, fmt.Errorf("read the built objects: %w", err)
	}
	return objects, nil
}

// SecurePath joins path to root and refuses anything outside root,
// through symbolic links too; what names path in errors.
func SecurePath(root, path, what string) (string, error) {
	full := filepath.Join(root, filepath.Clean("/"+path))
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", fmt.Errorf("%s %q: no such file or directory in the pull request", what, path)
	}
	rootReal, _ := filepath.EvalSymlinks(root)
	if r, err := filepath.Rel(rootReal, real); err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", fmt.Errorf("%s %q: leads outside the repository", what, path)
	}
	return real, nil
}

// Inside reports whether path, relative to the repository's root, stays
// inside it (before symbolic links, which SecurePath resolves).
func Inside(path string) bool {
	p := filepath.Clean(strings.TrimPrefix(path, "/"))
	return p != ".." && !strings.HasPrefix(p, "../")
}

// Rel is p as "./dir" relative to root.
func Rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil || r == "." {
		return "./"
	}
	return "./" + r
}

// CleanBuildError keeps the temporary checkout's location out of a
// kustomize error, and says plainly what kustomize's own words for a
// refusal mean.
func CleanBuildError(err error, root string) error {
	msg := strings.ReplaceAll(err.Error(), root, "<repo>")
	switch {
	case strings.Contains(msg, "fs-security-constraint"):
		return fmt.Errorf("a file or base lies outside the repository, and kubechat builds only inside the pull request's checkout: %s", msg)
	case strings.Contains(msg, "remote") || strings.Contains(msg, "git clone") || strings.Contains(msg, "://"):
		return fmt.Errorf("remote bases are off (kubechat builds only what the pull request holds): %s", msg)
	}
	return errors.New(msg)
}
