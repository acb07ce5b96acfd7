package hack_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeGo stands in for the go command: it records each call in $CALLS,
// answers "mod download -json" with a go.mod that has staging replaces, and
// writes the binaries a build names.
const fakeGo = `#!/bin/sh
echo "$*" >>"$CALLS"
case "$1 $2" in
"mod download")
	printf 'module k8s.io/kubernetes\nreplace k8s.io/api => ./staging/src/k8s.io/api\n' >"$FAKE_GOMOD"
	printf '{\n\t"GoMod": "%s",\n\t"Dir": "%s"\n}\n' "$FAKE_GOMOD" "$FAKE_DIR"
	;;
"build "*)
	shift
	while [ "$1" != "-o" ]; do shift; done
	o=$2
	shift 2
	case "$o" in
	*/) for p in "$@"; do : >"$o$(basename "$p")"; done ;;
	*) : >"$o" ;;
	esac
	;;
esac
exit 0
`

// builds runs hack/testbin.sh SET against an empty bin directory with the
// fake go command and returns the packages it built.
func builds(t *testing.T, set string) []string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "path")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "go"), []byte(fakeGo), 0o755))
	calls := filepath.Join(dir, "calls")
	fluxDir := filepath.Join(dir, "flux")
	for _, f := range []string{"config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml", "config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml", "cmd/flux/main.go"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(fluxDir, f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(fluxDir, f), nil, 0o644))
	}
	cmd := exec.Command("bash", "testbin.sh", set)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "CALLS="+calls, "TESTBIN="+filepath.Join(dir, "out"),
		"FAKE_GOMOD="+filepath.Join(dir, "go.mod"), "FAKE_DIR="+fluxDir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	b, err := os.ReadFile(calls)
	require.NoError(t, err)
	var pkgs []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "build" {
			for i := 1; i < len(f); i++ {
				switch {
				case f[i] == "-o":
					i++
				case f[i] == "./cmd/flux": // built in a copy of its module
					pkgs = append(pkgs, "flux")
				case strings.Contains(f[i], "/") && !strings.ContainsAny(f[i][:1], "-/") && !strings.Contains(f[i], "="):
					pkgs = append(pkgs, f[i])
				}
			}
		}
	}
	return pkgs
}

// TestDemoBuildsOnlyWhatTheDemoRuns: "make run" builds the control plane
// and kwok, and none of the tools only tests use.
func TestDemoBuildsOnlyWhatTheDemoRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the build script")
	}
	make, err := exec.Command("make", "-n", "-C", "..", "run").CombinedOutput()
	require.NoError(t, err, "%s", make)
	require.Contains(t, string(make), "hack/testbin.sh demo", "make run builds the demo's set")
	require.NotContains(t, string(make), "hack/testbin.sh all")

	demo := builds(t, "demo")
	require.ElementsMatch(t, []string{
		"go.etcd.io/etcd/server/v3",
		"k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager", "k8s.io/kubernetes/cmd/kube-scheduler",
		"sigs.k8s.io/kwok/cmd/kwok",
	}, demo)

	all := builds(t, "all")
	for _, want := range append(demo, "k8s.io/kubernetes/cmd/kubectl", "helm.sh/helm/v3/cmd/helm",
		"github.com/prometheus/alertmanager/cmd/alertmanager", "flux", "honnef.co/go/tools/cmd/staticcheck") {
		require.Contains(t, all, want)
	}
}
