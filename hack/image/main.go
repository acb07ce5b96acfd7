// Command image builds the agent's container image without a Docker engine
// and writes it as a docker-archive tarball (what "docker save" writes).
//
// It builds a static agent binary with "go build" (argv, no shell), then
// assembles a from-scratch image with internal/image: the binary at
// /kubechat, the build machine's CA bundle, /etc/passwd and /etc/group with
// the user kubechat (65532) and an empty /tmp. The creation time and every
// file mtime come from SOURCE_DATE_EPOCH or, when unset, the commit time of
// HEAD, so the same commit, toolchain and CA bundle give the same digest.
//
//	go run ./hack/image -o bin/kubechat-image.tar [-arch arm64] [-version v1.2.3] [-tag repo/kubechat:v1.2.3]
package main

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kubechat/kubechat/internal/image"
)

const (
	versionVar    = "github.com/kubechat/kubechat/internal/buildinfo.Version"
	defaultSource = "https://github.com/kubechat/kubechat"
	defaultCA     = "/etc/ssl/certs/ca-certificates.crt"
)

// versionRE keeps the version safe inside -ldflags (which cmd/go splits on
// spaces and quotes) and inside an image tag (after "+" becomes "_").
var versionRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._+-]{0,127}$`)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

// options are the parsed flags plus what was derived from git.
type options struct {
	dir, out, tag, arch   string
	version, revision     string
	source, caCerts       string
	created               time.Time
	createdFrom, goBinary string
}

func parse(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defArch := getenv("GOARCH")
	if defArch == "" {
		defArch = "amd64"
	}
	fs.StringVar(&o.dir, "dir", ".", "module root to build from")
	fs.StringVar(&o.out, "o", "bin/kubechat-image.tar", "output docker-archive tarball")
	fs.StringVar(&o.tag, "tag", "", `image reference recorded in the archive (default "kubechat:<version>")`)
	fs.StringVar(&o.arch, "arch", defArch, "target architecture: "+strings.Join(image.Arches, " or ")+" (default $GOARCH, else amd64)")
	fs.StringVar(&o.version, "version", "", `version stamped into the binary and the labels (default "git describe --tags --always --dirty")`)
	fs.StringVar(&o.revision, "revision", "", `source revision label (default "git rev-parse HEAD")`)
	fs.StringVar(&o.source, "source", defaultSource, "source repository label")
	fs.StringVar(&o.caCerts, "ca-certs", defaultCA, "PEM CA bundle to copy to "+image.CACertsPath+" (Debian: the ca-certificates package)")
	fs.StringVar(&o.goBinary, "go", "go", "go command used to build the agent")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("parse arguments: unexpected %q", fs.Arg(0))
	}

	if !slices.Contains(image.Arches, o.arch) {
		return o, fmt.Errorf("arch %q: want one of %s", o.arch, strings.Join(image.Arches, ", "))
	}
	var err error
	if o.version == "" {
		if o.version, err = git(ctx, o.dir, "describe", "--tags", "--always", "--dirty"); err != nil {
			return o, fmt.Errorf("derive version: %w (pass -version outside a git checkout)", err)
		}
	}
	if !versionRE.MatchString(o.version) {
		return o, fmt.Errorf("version %q: want letters, digits, '.', '_', '+' or '-'", o.version)
	}
	if o.revision == "" {
		if o.revision, err = git(ctx, o.dir, "rev-parse", "HEAD"); err != nil {
			return o, fmt.Errorf("derive revision: %w (pass -revision outside a git checkout)", err)
		}
	}
	if o.tag == "" {
		o.tag = "kubechat:" + strings.ReplaceAll(o.version, "+", "_")
	}
	if s := getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil || sec < 0 {
			return o, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970 as a non-negative integer", s)
		}
		o.created, o.createdFrom = time.Unix(sec, 0).UTC(), "SOURCE_DATE_EPOCH"
	} else {
		ct, err := git(ctx, o.dir, "log", "-1", "--format=%ct")
		if err != nil {
			return o, fmt.Errorf("derive creation time: %w (set SOURCE_DATE_EPOCH outside a git checkout)", err)
		}
		sec, err := strconv.ParseInt(ct, 10, 64)
		if err != nil {
			return o, fmt.Errorf("parse commit time %q: %w", ct, err)
		}
		o.created, o.createdFrom = time.Unix(sec, 0).UTC(), "commit time"
	}
	return o, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	start := time.Now()
	o, err := parse(ctx, args, getenv, stderr)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(o.caCerts)
	if err != nil {
		return fmt.Errorf("read CA certificates: %w (install the ca-certificates package or pass -ca-certs)", err)
	}

	tmp, err := os.MkdirTemp("", "kubechat-image-")
	if err != nil {
		return fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "kubechat")
	if err := goBuild(ctx, o, bin, stderr); err != nil {
		return err
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("read agent binary: %w", err)
	}
	if err := checkStatic(bin, o.arch); err != nil {
		return err
	}

	img, err := image.Build(image.Spec{
		Binary:   binary,
		CACerts:  ca,
		Arch:     o.arch,
		Created:  o.created,
		Version:  o.version,
		Revision: o.revision,
		Source:   o.source,
	})
	if err != nil {
		return err
	}
	if err := image.WriteArchive(o.out, o.tag, img); err != nil {
		return err
	}
	return report(stdout, o, img, time.Since(start))
}

// goBuild builds a static, stripped, path-independent agent. VCS stamping is
// off so that the binary does not depend on the caller's GOFLAGS or on git
// being present; the version and the image labels carry the revision.
func goBuild(ctx context.Context, o options, out string, stderr io.Writer) error {
	ldflags := "-s -w -X " + versionVar + "=" + o.version
	cmd := exec.CommandContext(ctx, o.goBinary, "build", "-trimpath", "-buildvcs=false",
		"-ldflags", ldflags, "-o", out, "./cmd/kubechat")
	cmd.Dir = o.dir
	// Later entries win, so these override the caller's environment.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.arch)
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build agent for linux/%s: %w", o.arch, err)
	}
	return nil
}

// checkStatic refuses a binary that needs a dynamic loader (there is none in
// the image) or was built for another machine.
func checkStatic(path, arch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("inspect agent binary: %w", err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		return fmt.Errorf("inspect agent binary: machine %v, want %v for %s", f.Machine, want, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("inspect agent binary: dynamically linked (has an ELF interpreter); is CGO_ENABLED=0 honoured?")
		}
	}
	return nil
}

// report prints what was built: the manifest digest (what a registry shows
// after "crane push" of the archive), the config digest (the image ID of
// Docker's classic store) and the sizes.
func report(w io.Writer, o options, img v1.Image, took time.Duration) error {
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("compute image digest: %w", err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("compute config digest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("read layers: %w", err)
	}
	var compressed, uncompressed int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return fmt.Errorf("read layer size: %w", err)
		}
		compressed += n
		rc, err := l.Uncompressed()
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		n, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		uncompressed += n
	}
	st, err := os.Stat(o.out)
	if err != nil {
		return fmt.Errorf("stat archive: %w", err)
	}
	fmt.Fprintf(w, "wrote %s (docker-archive, linux/%s, tag %s) in %s\n", o.out, o.arch, o.tag, took.Round(100*time.Millisecond))
	fmt.Fprintf(w, "  digest    %s\n", digest)
	fmt.Fprintf(w, "  image id  %s\n", id)
	fmt.Fprintf(w, "  size      %s archive, %s compressed layer, %s uncompressed\n", mib(st.Size()), mib(compressed), mib(uncompressed))
	fmt.Fprintf(w, "  version   %s, revision %s, created %s (%s)\n", o.version, o.revision, o.created.Format(time.RFC3339), o.createdFrom)
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
