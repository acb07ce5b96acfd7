package cli_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/kubechat/kubechat/configs"
	"github.com/kubechat/kubechat/internal/buildinfo"
	"github.com/kubechat/kubechat/internal/cli"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Run(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestEveryCommandHasHelp(t *testing.T) {
	for cmd, flags := range map[string][]string{
		"run":          {"--config", "--kubeconfig"},
		"check-config": {"--config"},
		"exec":         {"--namespace", "--max-output-bytes", "--settings", "--kubeconfig"},
		"rbac":         {"--config", "--namespace", "--release", "--service-account"},
		"version":      {"-o, --output"},
		"completion":   {"bash", "zsh", "fish"},
		"hub":          {"--config"},
	} {
		code, out, errs := run(t, cmd, "--help")
		require.Equal(t, 0, code, errs)
		require.Contains(t, out, "Usage:\n  kubechat "+cmd, cmd)
		for _, f := range flags {
			require.Contains(t, out, f, cmd)
		}
		code, again, _ := run(t, "help", cmd)
		require.Equal(t, 0, code)
		require.Equal(t, out, again, "help CMD is CMD --help")
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errs := run(t, "completion", shell)
		require.Equal(t, 0, code, errs)
		require.Contains(t, out, "kubechat", shell)
	}
	// The scripts ask the binary itself, which knows the commands and flags.
	code, out, _ := run(t, "__complete", "rb")
	require.Equal(t, 0, code)
	require.Contains(t, out, "rbac")
	code, out, _ = run(t, "__complete", "rbac", "--rel")
	require.Equal(t, 0, code)
	require.Contains(t, out, "--release")
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	require.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Equal(t, buildinfo.String(), lines[0], "the first line is the version alone")
	require.Equal(t, "go: "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH, lines[len(lines)-1])

	code, out, _ = run(t, "version", "-o", "json")
	require.Equal(t, 0, code)
	var info buildinfo.Info
	require.NoError(t, json.Unmarshal([]byte(out), &info))
	require.Equal(t, buildinfo.Get(), info)
	require.Equal(t, runtime.Version(), info.GoVersion)

	code, _, errs := run(t, "version", "--output", "yaml")
	require.Equal(t, 2, code)
	require.Contains(t, errs, `unknown format "yaml" (known: text, json)`)
}

func TestUsageErrors(t *testing.T) {
	for args, want := range map[string]string{
		"":                    "name a command",
		"frobnicate":          `unknown command "frobnicate"`,
		"rbca":                `unknown command "rbca" (did you mean rbac?)`,
		"run --bogus":         "unknown flag: --bogus",
		"run extra":           `unexpected argument "extra"`,
		"check-config":        "give at least one config file",
		"rbac":                "give the agent's config with --config FILE",
		"exec":                "name an executor type after --",
		"exec --namespace":    "flag needs an argument: --namespace",
		"version --output":    "flag needs an argument",
		"exec --bogus -- x y": "unknown flag: --bogus",
	} {
		code, out, errs := run(t, strings.Fields(args)...)
		require.Equal(t, 2, code, args)
		require.Contains(t, errs, want, args)
		require.Contains(t, errs, "Usage:", args)
		require.Empty(t, out, args)
	}
}

// TestExecLeavesArgvAlone: after TYPE (or --), everything is the
// command's argv, never kubechat's flags.
func TestExecLeavesArgvAlone(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	for _, args := range [][]string{
		{"exec", "kubctl", "--namespace", "x", "--bogus"},
		{"exec", "--namespace", "web", "--", "kubctl", "--settings", "[", "--", "-h"},
	} {
		code, out, errs := run(t, args...)
		require.Equal(t, 1, code, args)
		require.Contains(t, errs, `unknown executor type "kubctl"`, args)
		require.Empty(t, out)
	}
	// The form command pods run: flags, "--", then argv; a settings value
	// spans lines. Outside a cluster it gets as far as the connection.
	code, _, errs := run(t, "exec", "--namespace", "web", "--max-output-bytes", "100", "--settings", "driver: configmap\n",
		"--", "helm", "list", "--settings", "[", "; rm -rf /")
	require.Equal(t, 1, code)
	require.NotContains(t, errs, "parse settings")
	require.Contains(t, errs, "kubechat exec: kubeconfig")
}

// TestCheckConfigWarns: a config that loads but lacks a platform or a
// source is valid, with a warning on stderr for each.
func TestCheckConfigWarns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "short.yaml")
	require.NoError(t, os.WriteFile(file, []byte("cluster:\n  name: dev\n"), 0o600))
	code, out, errs := run(t, "check-config", file)
	require.Equal(t, 0, code, errs)
	require.Equal(t, "ok: 1 file(s) valid\n", out)
	require.Equal(t, "warning: "+file+": platforms: no platform is configured: the agent can post no alert and hear no command\n"+
		"warning: "+file+": sources: no source is configured: the agent posts no alerts (it still answers commands)\n", errs)

	for k, v := range configs.ExampleEnv {
		t.Setenv(k, v)
	}
	code, _, errs = run(t, "check-config", filepath.Join("..", "..", "configs", "slack.yaml"))
	require.Equal(t, 0, code, errs)
	require.Empty(t, errs, "a whole config warns of nothing")
}

func TestRBAC(t *testing.T) {
	file := filepath.Join("..", "..", "configs", "isolation.yaml")
	code, out, errs := run(t, "rbac", "--config", file, "--namespace", "ops", "--release", "prod", "--service-account", "agent")
	require.Equal(t, 0, code, errs)
	require.True(t, strings.HasPrefix(out, "# The RBAC of the kubechat agent for "+file))
	docs := strings.Split(out, "\n---\n")
	require.Greater(t, len(docs), 2)
	kinds := map[string]int{}
	for _, d := range docs {
		var o struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Subjects []map[string]string `json:"subjects"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(d), &o))
		require.True(t, strings.HasPrefix(o.Metadata.Name, "prod-kubechat"), o.Metadata.Name)
		kinds[o.Kind]++
		if strings.HasSuffix(o.Kind, "Binding") {
			require.Equal(t, []map[string]string{{"kind": "ServiceAccount", "name": "agent", "namespace": "ops"}}, o.Subjects)
		}
	}
	require.Positive(t, kinds["Role"])
	require.Equal(t, kinds["Role"], kinds["RoleBinding"])

	code, _, errs = run(t, "rbac", "--config", "does-not-exist.yaml")
	require.Equal(t, 1, code)
	require.Contains(t, errs, "does-not-exist.yaml: no such file or directory")
}

// TestProbe: 200 succeeds with the body; another status, no server and a
// malformed URL fail, naming what is wrong.
func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		http.Error(w, "source/pods: not synced", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	code, out, _ := run(t, "probe", srv.URL+"/readyz")
	require.Equal(t, 0, code)
	require.Equal(t, srv.URL+"/readyz: ok\n", out)
	code, _, errOut := run(t, "probe", srv.URL+"/other")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "503 Service Unavailable: source/pods: not synced")
	srv.Close()
	code, _, errOut = run(t, "probe", "--timeout", "2s", srv.URL+"/readyz")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "connection refused")
	code, _, errOut = run(t, "probe", "file:///etc/passwd")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `"file:///etc/passwd" is not an http or https URL`)
}

// TestFleetCredentials: one seed per side and the server config, which
// names every public key and no seed; an existing file is not overwritten.
func TestFleetCredentials(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fleet")
	code, out, errs := run(t, "fleet", "credentials", "--cluster", "prod", "--cluster", "dev", "--out", dir)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "dev.nk, hub.nk, nats-server.conf, prod.nk")
	conf, err := os.ReadFile(filepath.Join(dir, "nats-server.conf"))
	require.NoError(t, err)
	for _, name := range []string{"hub", "prod", "dev"} {
		seed, err := os.ReadFile(filepath.Join(dir, name+".nk"))
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(seed), "SU"), "%s.nk is a user seed", name)
		require.NotContains(t, string(conf), string(seed))
		info, err := os.Stat(filepath.Join(dir, name+".nk"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	}
	require.Contains(t, string(conf), `publish: { allow: ["kubechat.prod.out", "kubechat.prod.hello"] }`)

	code, _, errs = run(t, "fleet", "credentials", "--cluster", "prod", "--out", dir)
	require.Equal(t, 1, code)
	require.Contains(t, errs, "exists; not overwritten")
	code, _, errs = run(t, "fleet", "credentials", "--cluster", "a.b", "--out", t.TempDir())
	require.Equal(t, 2, code)
	require.Contains(t, errs, `--cluster "a.b"`)
}
