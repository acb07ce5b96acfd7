package image

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var created = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// testCA returns a freshly generated self-signed CA certificate in PEM.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "image test root"},
		NotBefore:             created,
		NotAfter:              created.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func testSpec(t *testing.T) Spec {
	t.Helper()
	return Spec{
		Binary:   []byte("\x7fELF fake agent binary for tests\n"),
		CACerts:  testCA(t),
		Arch:     "amd64",
		Created:  created,
		Version:  "v1.2.3",
		Revision: "0123456789abcdef0123456789abcdef01234567",
		Source:   "https://github.com/kubechat/kubechat",
	}
}

// writeAndLoad builds s, writes the archive and reads it back with
// go-containerregistry's docker-archive reader.
func writeAndLoad(t *testing.T, s Spec) (built, loaded v1.Image, archive string) {
	t.Helper()
	img, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	archive = filepath.Join(t.TempDir(), "out", "kubechat-image.tar")
	if err := WriteArchive(archive, "example.com/kubechat:v1.2.3", img); err != nil {
		t.Fatal(err)
	}
	back, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatalf("load archive: %v", err)
	}
	return img, back, archive
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestArchiveLoadsBackWithTheSameDigest(t *testing.T) {
	img, back, archive := writeAndLoad(t, testSpec(t))
	if got, want := digest(t, back), digest(t, img); got != want {
		t.Fatalf("loaded digest %s, built %s", got, want)
	}
	mt, err := back.MediaType()
	if err != nil || mt != types.DockerManifestSchema2 {
		t.Fatalf("media type %q, %v; want %q", mt, err, types.DockerManifestSchema2)
	}

	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(archive) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !reflect.DeepEqual(m[0].RepoTags, []string{"example.com/kubechat:v1.2.3"}) {
		t.Fatalf("manifest.json = %+v, want one image tagged example.com/kubechat:v1.2.3", m)
	}

	// Copy into an OCI image layout (what "skopeo copy docker-archive: oci:"
	// or a registry push does with the blobs) and read it back from there.
	lp, err := layout.Write(t.TempDir(), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(back); err != nil {
		t.Fatal(err)
	}
	fromLayout, err := lp.Image(digest(t, img))
	if err != nil {
		t.Fatalf("read image from layout: %v", err)
	}
	if got, want := digest(t, fromLayout), digest(t, img); got != want {
		t.Fatalf("layout digest %s, built %s", got, want)
	}
}

func TestConfig(t *testing.T) {
	s := testSpec(t)
	_, back, _ := writeAndLoad(t, s)
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	if !cf.Created.Time.Equal(created) {
		t.Errorf("created %v, want %v", cf.Created.Time, created)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", c.User)
	}
	if !reflect.DeepEqual(c.Entrypoint, []string{"/kubechat"}) {
		t.Errorf("entrypoint %q, want exec form [/kubechat]", c.Entrypoint)
	}
	if !reflect.DeepEqual(c.Cmd, []string{"run"}) {
		t.Errorf("cmd %q, want [run]", c.Cmd)
	}
	if c.WorkingDir != "/" {
		t.Errorf("working dir %q, want /", c.WorkingDir)
	}
	if c.Shell != nil || c.Healthcheck != nil || c.OnBuild != nil {
		t.Errorf("shell %q, healthcheck %v, onbuild %q: want none", c.Shell, c.Healthcheck, c.OnBuild)
	}
	for _, e := range append(append(append([]string(nil), c.Entrypoint...), c.Cmd...), c.Env...) {
		if strings.Contains(e, "sh") {
			t.Errorf("config mentions a shell: %q", e)
		}
	}
	want := map[string]string{
		"org.opencontainers.image.title":       "kubechat",
		"org.opencontainers.image.description": "ChatOps agent for Kubernetes",
		"org.opencontainers.image.version":     "v1.2.3",
		"org.opencontainers.image.revision":    s.Revision,
		"org.opencontainers.image.source":      s.Source,
		"org.opencontainers.image.created":     "2026-03-14T15:09:26Z",
	}
	if !reflect.DeepEqual(c.Labels, want) {
		t.Errorf("labels %v, want %v", c.Labels, want)
	}
	if len(cf.History) != 1 || cf.History[0].EmptyLayer || !cf.History[0].Created.Time.Equal(created) {
		t.Errorf("history %+v, want one entry for the one layer, created %v", cf.History, created)
	}
	if len(cf.RootFS.DiffIDs) != 1 {
		t.Errorf("diff ids %v, want one layer", cf.RootFS.DiffIDs)
	}
}

type entry struct {
	name     string
	typeflag byte
	mode     int64
}

func (e entry) String() string { return fmt.Sprintf("%s(%c %#o)", e.name, e.typeflag, e.mode) }

func TestLayerContents(t *testing.T) {
	s := testSpec(t)
	_, back, _ := writeAndLoad(t, s)
	layers, err := back.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v; want exactly one", len(layers), err)
	}
	mt, err := layers[0].MediaType()
	if err != nil || mt != types.DockerLayer {
		t.Fatalf("layer media type %q, %v; want %q", mt, err, types.DockerLayer)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	var got []entry
	data := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, entry{h.Name, h.Typeflag, h.Mode})
		if !h.ModTime.Equal(created) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, created)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d (%q:%q), want 0:0 and no names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if len(h.PAXRecords) != 0 || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: PAX records %v, atime %v, ctime %v: want none", h.Name, h.PAXRecords, h.AccessTime, h.ChangeTime)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		data[h.Name] = b
		base := filepath.Base(h.Name)
		if strings.HasPrefix(h.Name, "bin") || base == "sh" || base == "bash" || base == "busybox" {
			t.Errorf("layer holds a shell or bin directory: %s", h.Name)
		}
		if bytes.Contains(b, []byte("/bin/sh")) {
			t.Errorf("%s mentions /bin/sh", h.Name)
		}
	}

	want := []entry{
		{"etc/", tar.TypeDir, 0o755},
		{"etc/group", tar.TypeReg, 0o644},
		{"etc/passwd", tar.TypeReg, 0o644},
		{"etc/ssl/", tar.TypeDir, 0o755},
		{"etc/ssl/certs/", tar.TypeDir, 0o755},
		{"etc/ssl/certs/ca-certificates.crt", tar.TypeReg, 0o644},
		{"kubechat", tar.TypeReg, 0o755},
		{"tmp/", tar.TypeDir, 0o1777},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("layer entries\n got %v\nwant %v", got, want)
	}
	if !bytes.Equal(data["kubechat"], s.Binary) {
		t.Error("kubechat differs from the input binary")
	}
	if !bytes.Equal(data["etc/ssl/certs/ca-certificates.crt"], s.CACerts) {
		t.Error("CA bundle differs from the input")
	}
	if !strings.Contains(string(data["etc/passwd"]), "\nkubechat:x:65532:65532:") {
		t.Errorf("etc/passwd has no kubechat user with uid/gid 65532:\n%s", data["etc/passwd"])
	}
	if !strings.Contains(string(data["etc/group"]), "\nkubechat:x:65532:") {
		t.Errorf("etc/group has no kubechat group with gid 65532:\n%s", data["etc/group"])
	}
}

func TestReproducible(t *testing.T) {
	s := testSpec(t)
	a, _, archiveA := writeAndLoad(t, s)
	b, _, archiveB := writeAndLoad(t, s)
	if da, db := digest(t, a), digest(t, b); da != db {
		t.Fatalf("same inputs, different digests: %s and %s", da, db)
	}
	if ha, hb := fileHash(t, archiveA), fileHash(t, archiveB); ha != hb {
		t.Fatalf("same inputs, different archives: %x and %x", ha, hb)
	}

	// Each input matters, so the digest is a fingerprint of all of them.
	base := digest(t, a)
	for name, change := range map[string]func(*Spec){
		"binary":  func(s *Spec) { s.Binary = append([]byte(nil), "\x7fELF another\n"...) },
		"created": func(s *Spec) { s.Created = s.Created.Add(time.Second) },
		"arch":    func(s *Spec) { s.Arch = "arm64" },
		"version": func(s *Spec) { s.Version = "v1.2.4" },
	} {
		c := s
		change(&c)
		img, err := Build(c)
		if err != nil {
			t.Fatal(err)
		}
		if digest(t, img) == base {
			t.Errorf("changing %s kept digest %s", name, base)
		}
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestBuildRejectsBadSpec(t *testing.T) {
	_, err := Build(Spec{Arch: "386", CACerts: []byte("not a certificate")})
	if err == nil {
		t.Fatal("Build accepted an empty spec")
	}
	for _, field := range []string{"binary: empty", "ca certificates: no PEM certificate", `arch "386"`, "created: not set", "version: empty"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %q", err, field)
		}
	}
}

func TestWriteArchiveRejectsBadTag(t *testing.T) {
	img, err := Build(testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "x.tar")
	err = WriteArchive(path, "Not A Tag!", img)
	if err == nil || !strings.Contains(err.Error(), `parse tag "Not A Tag!"`) {
		t.Fatalf("error %v, want a parse tag error", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("archive exists after a failed write: %v", err)
	}
}
