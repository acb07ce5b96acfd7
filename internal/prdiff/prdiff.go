// Package prdiff is the diff of a GitOps object (a Flux Kustomization, an
// Argo CD Application) at a GitHub pull request's head against the live
// cluster, shared by the executors that offer it: the pull request's
// commit is fetched into a size-limited temporary checkout, built by the
// executor's own renderer inside that checkout with a time limit, and each
// object is dry-run applied on the server (Flux's ssa) as the caller. The
// report lists created, configured, deleted, unchanged and skipped
// objects with a unified diff per change, for chat and for a pull request
// comment; its buttons post the diff to the pull request (one comment per
// pull request and object, edited in place), approve the pull request at
// the diffed commit only, and open it.
//
// Secret values are masked wherever they appear: the executor's
// redact.Set sees every Secret read from the cluster, and Compare adds
// those of built Secrets.
package prdiff

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/github"
)

// Settings are how pull requests are read and acted on, and the limits
// of a checkout and its build. The flux executor's settings are these;
// other executors embed them.
type Settings struct {
	// GitHub is how pull requests are read, commented on and approved.
	GitHub GitHubSettings `yaml:"github"`
	// MaxRepoBytes caps a checkout: the bytes fetched, and the files on disk
	// (default 32 MiB, which fits the chart's /tmp volume).
	MaxRepoBytes int64 `yaml:"maxRepoBytes"`
	// MaxManifestBytes caps the size of a build's output (default 16 MiB).
	MaxManifestBytes int64 `yaml:"maxManifestBytes"`
	// BuildTimeout caps the clone and the build together (default 2m).
	BuildTimeout config.Duration `yaml:"buildTimeout"`
	// WorkDir holds the temporary checkouts (default: the system temp dir).
	WorkDir string `yaml:"workDir"`
}

// GitHubSettings are the GitHub API and its credentials: a token, or a
// GitHub App installation. With neither, public repositories can be diffed
// but not commented on or approved.
type GitHubSettings = config.GitHubAPI

// AppSettings identify a GitHub App installation.
type AppSettings = config.GitHubApp

// Defaults of Settings.
const (
	DefaultMaxRepoBytes     = 32 << 20
	DefaultMaxManifestBytes = 16 << 20
	DefaultBuildTimeout     = 2 * time.Minute
)

// Differ diffs pull requests for one executor: its GitHub client and
// credentials, and its limits.
type Differ struct {
	s     Settings
	gh    *github.Client
	token github.TokenSource // nil: anonymous
	// tool names the executor in temporary directories ("flux").
	tool string
}

// New validates s (its errors name the field under prefix, "settings")
// and builds the GitHub client. It contacts nothing.
func New(tool, prefix string, s Settings) (*Differ, error) {
	if err := s.validate(prefix); err != nil {
		return nil, err
	}
	d := &Differ{s: s.withDefaults(), tool: tool}
	gh, token, err := github.Connect(s.GitHub, nil)
	if err != nil {
		return nil, fmt.Errorf("%s.github.%w", prefix, err)
	}
	d.gh, d.token = gh, token
	return d, nil
}

// GitHub is the differ's GitHub client.
func (d *Differ) GitHub() *github.Client { return d.gh }

func (s Settings) validate(prefix string) error {
	var errs []error
	s.GitHub.Check(func(field, problem string) {
		at := prefix + ".github"
		if field != "" {
			at += "." + field
		}
		errs = append(errs, fmt.Errorf("%s: %s", at, problem))
	})
	if s.MaxRepoBytes < 0 {
		errs = append(errs, fmt.Errorf("%s.maxRepoBytes: %d is negative", prefix, s.MaxRepoBytes))
	}
	if s.MaxManifestBytes < 0 {
		errs = append(errs, fmt.Errorf("%s.maxManifestBytes: %d is negative", prefix, s.MaxManifestBytes))
	}
	if s.BuildTimeout.D() < 0 {
		errs = append(errs, fmt.Errorf("%s.buildTimeout: %s is negative", prefix, s.BuildTimeout.D()))
	}
	return errors.Join(errs...)
}

func (s Settings) withDefaults() Settings {
	if s.MaxRepoBytes == 0 {
		s.MaxRepoBytes = DefaultMaxRepoBytes
	}
	if s.MaxManifestBytes == 0 {
		s.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if s.BuildTimeout.D() == 0 {
		s.BuildTimeout = config.Duration(DefaultBuildTimeout)
	}
	if s.WorkDir == "" {
		s.WorkDir = os.TempDir()
	}
	return s
}

// IsSHA reports whether s is a full commit id.
func IsSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// ShortSHA is how a report names its commit.
func ShortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
