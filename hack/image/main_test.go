package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const root = "../.." // the module root, from this package's directory

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParseDerivesFromGit(t *testing.T) {
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skip("not a git checkout")
	}
	o, err := parse(context.Background(), []string{"-dir", root}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(o.revision) {
		t.Errorf("revision %q, want a full commit hash", o.revision)
	}
	if o.version == "" || o.tag != "kubechat:"+o.version {
		t.Errorf("version %q, tag %q: want a version and the tag kubechat:<version>", o.version, o.tag)
	}
	if o.createdFrom != "commit time" || o.created.Before(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("created %v from %s, want the commit time", o.created, o.createdFrom)
	}
	if o.arch != "amd64" || o.out != "bin/kubechat-image.tar" || o.caCerts != "/etc/ssl/certs/ca-certificates.crt" {
		t.Errorf("defaults: arch %q, out %q, ca-certs %q", o.arch, o.out, o.caCerts)
	}
}

func TestParse(t *testing.T) {
	fixed := []string{"-version", "v1.0.0+meta", "-revision", "abc"}
	o, err := parse(context.Background(), fixed, env(map[string]string{"SOURCE_DATE_EPOCH": "1700000000", "GOARCH": "arm64"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.arch != "arm64" || o.tag != "kubechat:v1.0.0_meta" || !o.created.Equal(time.Unix(1700000000, 0)) || o.createdFrom != "SOURCE_DATE_EPOCH" {
		t.Errorf("arch %q, tag %q, created %v from %s", o.arch, o.tag, o.created, o.createdFrom)
	}

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-version", "v1 -X evil=1", "-revision", "abc"}, nil, `version "v1 -X evil=1"`},
		{fixed, map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}, `SOURCE_DATE_EPOCH "yesterday"`},
		{append([]string{"extra"}, fixed...), nil, `unexpected "extra"`},
		{append([]string{"-arch", "386"}, fixed...), nil, `arch "386"`},
	} {
		_, err := parse(context.Background(), tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parse(%q) error %v, want it to name %s", tc.args, err, tc.want)
		}
	}
}

func TestRunRequiresCACertificates(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.crt")
	err := run(context.Background(), []string{"-version", "v1", "-revision", "abc", "-ca-certs", missing},
		env(map[string]string{"SOURCE_DATE_EPOCH": "0"}), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "read CA certificates") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("error %v, want one naming the missing CA bundle", err)
	}
}

var digestRE = regexp.MustCompile(`(?m)^  digest    (sha256:[0-9a-f]{64})$`)

// buildImage runs the command as "make image" does and returns the printed
// digest.
func buildImage(t *testing.T, out string) string {
	t.Helper()
	// Stop the build a little before the test binary's -timeout, so that a
	// cold build cache ends in a clear message rather than a panic dump.
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		defer cancel()
	}
	var stdout, stderr bytes.Buffer
	args := []string{"-dir", root, "-o", out, "-tag", "kubechat:imagetest",
		"-version", "v0.0.0-imagetest", "-revision", "0123456789abcdef0123456789abcdef01234567"}
	if err := run(ctx, args, env(map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}), &stdout, &stderr); err != nil {
		if ctx.Err() != nil {
			t.Fatalf("build image: %v: the build did not finish before the test deadline; "+
				"a cold build cache (-trimpath, CGO_ENABLED=0) takes several minutes: run \"make image\" once or pass -timeout 30m", err)
		}
		t.Fatalf("build image: %v\n%s", err, stderr.String())
	}
	t.Logf("%s", stdout.String())
	m := digestRE.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no digest in the output:\n%s", stdout.String())
	}
	return m[1]
}

// TestImageRunsTheAgent builds the real agent into an image, twice, and runs
// the entrypoint taken out of the layer.
func TestImageRunsTheAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent binary; skipped with -short")
	}
	if _, err := os.Stat(defaultCA); err != nil {
		t.Skipf("no CA bundle on this machine: %v", err)
	}
	dir := t.TempDir()
	first := filepath.Join(dir, "a.tar")
	digest := buildImage(t, first)

	img, err := tarball.ImageFromPath(first, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil || d.String() != digest {
		t.Fatalf("archive digest %s, %v; printed %s", d, err, digest)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Config.Entrypoint) != 1 || cf.Config.User != "65532:65532" {
		t.Fatalf("entrypoint %q, user %q", cf.Config.Entrypoint, cf.Config.User)
	}
	entry := cf.Config.Entrypoint[0]
	if cf.Config.Labels["org.opencontainers.image.version"] != "v0.0.0-imagetest" {
		t.Errorf("labels %v", cf.Config.Labels)
	}

	// Take the entrypoint out of the layer, with its mode from the tar.
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	bin := filepath.Join(dir, "entrypoint")
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("entrypoint %s is not in the layer", entry)
		}
		if err != nil {
			t.Fatal(err)
		}
		if "/"+h.Name != entry {
			continue
		}
		if h.Mode != 0o755 || h.Typeflag != tar.TypeReg {
			t.Fatalf("%s: type %c mode %#o, want a regular file with mode 0755", entry, h.Typeflag, h.Mode)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, b, os.FileMode(h.Mode)); err != nil {
			t.Fatal(err)
		}
		break
	}
	if err := checkStatic(bin, "amd64"); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
		// The first line is the version alone; revision and Go version follow.
		if first, _, _ := strings.Cut(string(out), "\n"); err != nil || first != "v0.0.0-imagetest" {
			t.Fatalf("%s version: %q, %v; want v0.0.0-imagetest first", entry, out, err)
		}
	}

	// The same inputs again: the same digest and the same bytes.
	second := filepath.Join(dir, "b.tar")
	if again := buildImage(t, second); again != digest {
		t.Fatalf("second build digest %s, first %s", again, digest)
	}
	a, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same inputs wrote different archives")
	}
}
