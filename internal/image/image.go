// Package image assembles the agent's container image from scratch, without a
// Docker engine and without a base image: one layer holding the static agent
// binary, a CA bundle, /etc/passwd, /etc/group and an empty /tmp, and a config
// that runs the binary as the non-root user kubechat (65532:65532) with no
// shell anywhere.
//
// The result is reproducible: every tar entry has a fixed owner, mode and
// mtime, entries are sorted, gzip carries no timestamp and the config's
// creation time comes from Spec.Created. The same inputs (binary, CA bundle,
// Spec) therefore give the same image digest.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Paths and identity baked into the image.
const (
	// BinaryPath is where the agent lives in the image; it is the entrypoint.
	BinaryPath = "/kubechat"
	// CACertsPath is where Go's crypto/x509 looks first on Linux, so no
	// SSL_CERT_FILE is needed.
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	// UID and GID of the kubechat user; 65532 is the distroless "nonroot" id,
	// so policies written for distroless images fit this one too.
	UID = 65532
	GID = 65532
	// User is the config's User field.
	User = "65532:65532"
)

// createdBy is the history entry of the single layer.
const createdBy = "kubechat image builder: /kubechat, CA certificates, /etc/passwd, /etc/group, /tmp"

// Command is the default argument list after the entrypoint.
var Command = []string{"run"}

// Spec describes the image around the binary.
type Spec struct {
	// Binary is the statically linked agent for linux/Arch.
	Binary []byte
	// CACerts is a PEM bundle of trusted roots (for example the build
	// machine's /etc/ssl/certs/ca-certificates.crt).
	CACerts []byte
	// Arch is the GOARCH the binary was built for: "amd64" or "arm64".
	Arch string
	// Created is the image creation time and the mtime of every file. Use
	// SOURCE_DATE_EPOCH or the commit time, never time.Now, to stay
	// reproducible.
	Created time.Time
	// Version, Revision and Source fill the OCI labels
	// org.opencontainers.image.{version,revision,source}. Version is required.
	Version  string
	Revision string
	Source   string
}

// Arches lists the architectures Build accepts.
var Arches = []string{"amd64", "arm64"}

func (s Spec) validate() error {
	var errs []error
	if len(s.Binary) == 0 {
		errs = append(errs, errors.New("binary: empty"))
	}
	if len(s.CACerts) == 0 {
		errs = append(errs, errors.New("ca certificates: empty"))
	} else if !x509.NewCertPool().AppendCertsFromPEM(s.CACerts) {
		errs = append(errs, errors.New("ca certificates: no PEM certificate found"))
	}
	if !slices.Contains(Arches, s.Arch) {
		errs = append(errs, fmt.Errorf("arch %q: want one of %s", s.Arch, strings.Join(Arches, ", ")))
	}
	if s.Created.IsZero() {
		errs = append(errs, errors.New("created: not set"))
	}
	if s.Version == "" {
		errs = append(errs, errors.New("version: empty"))
	}
	return errors.Join(errs...)
}

// file is one entry of the layer; directories have no data.
type file struct {
	name  string // relative, slash-separated, as in the tar ("etc/passwd")
	mode  int64
	isDir bool
	data  []byte
}

// passwd and group define root (for tools that expect uid 0 to resolve) and
// the kubechat user. The home directory is /tmp: it is the one writable place
// in the pod (an emptyDir), so libraries that fall back to $HOME can write.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"kubechat:x:65532:65532:kubechat:/tmp:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"kubechat:x:65532:\n"
)

// files returns the layer's entries, sorted by name, parents before children.
func files(s Spec) []file {
	fs := []file{
		{name: "etc", mode: 0o755, isDir: true},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl", mode: 0o755, isDir: true},
		{name: "etc/ssl/certs", mode: 0o755, isDir: true},
		{name: strings.TrimPrefix(CACertsPath, "/"), mode: 0o644, data: s.CACerts},
		{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, data: s.Binary},
		// /tmp is shadowed by the chart's emptyDir; it is here so that
		// "docker run" without a volume still has os.TempDir().
		{name: "tmp", mode: 0o1777, isDir: true},
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].name < fs[j].name })
	return fs
}

// layerTar writes the uncompressed layer: root-owned entries with fixed
// mtimes, in the USTAR format so that no PAX records (atime, ctime) vary.
func layerTar(w io.Writer, fs []file, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, f := range fs {
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		if f.isDir {
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("write tar header %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("write tar entry %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("close tar: %w", err)
	}
	return nil
}

// layer builds the gzip-compressed layer once, in memory. The gzip header has
// no name and no mtime, so the bytes depend only on the content (and the Go
// version's compress/flate). The default level: for the agent, level 9 saves
// 0.1 MiB of 24 and takes three times as long.
func layer(fs []file, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, fmt.Errorf("create gzip writer: %w", err)
	}
	if err := layerTar(zw, fs, mtime); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("close gzip: %w", err)
	}
	gz := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("create layer: %w", err)
	}
	return l, nil
}

// Labels returns the OCI annotation labels Build sets for s.
func Labels(s Spec) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "kubechat",
		"org.opencontainers.image.description": "ChatOps agent for Kubernetes",
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.created":     s.Created.UTC().Format(time.RFC3339),
	}
	if s.Revision != "" {
		l["org.opencontainers.image.revision"] = s.Revision
	}
	if s.Source != "" {
		l["org.opencontainers.image.source"] = s.Source
	}
	return l
}

// Build assembles the image described by s. It uses the Docker v2 schema 2
// media types (those of empty.Image), which is what a docker-archive tarball
// round-trips to, so the digest Build reports is the digest a registry shows
// after the tarball is pushed with crane.
func Build(s Spec) (v1.Image, error) {
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	created := s.Created.UTC().Truncate(time.Second)
	l, err := layer(files(s), created)
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: l,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: createdBy,
			Comment:   "built from scratch, no base image",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("build image: append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("build image: read config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = s.Arch
	cf.OS = "linux"
	cf.Created = v1.Time{Time: created}
	cf.Author = ""
	cf.Config = v1.Config{
		User:       User,
		Entrypoint: []string{BinaryPath},
		Cmd:        append([]string(nil), Command...),
		WorkingDir: "/",
		Labels:     Labels(s),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("build image: set config: %w", err)
	}
	return img, nil
}
