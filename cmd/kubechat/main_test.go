package main

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/configs"
)

func TestCheckConfigExamples(t *testing.T) {
	names, err := fs.Glob(configs.Examples, "*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	for k, v := range configs.ExampleEnv {
		t.Setenv(k, v)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"check-config", filepath.Join("..", "..", "configs", name)}, &out, &errb)
			require.Equal(t, 0, code, errb.String())
			require.Equal(t, "ok: 1 file(s) valid\n", out.String())
		})
	}
}

func TestCheckConfigBroken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broken.yaml")
	require.NoError(t, os.WriteFile(path, []byte("cluster:\n  name: x\nplatforms:\n  - name: a\n    type: slakc\n"), 0o600))
	var out, errb bytes.Buffer
	code := run([]string{"check-config", path}, &out, &errb)
	require.Equal(t, 1, code)
	require.Equal(t, path+`:5: platforms[0].type: unknown platform type "slakc" (known: discord, elasticsearch, hub, log, mattermost, opensearch, pagerduty, slack, teams, webchat, webhook)`+"\n", errb.String())

	// Settings are checked by the platform's own package, still positioned.
	require.NoError(t, os.WriteFile(path, []byte("cluster:\n  name: x\nplatforms:\n  - name: a\n    type: log\n    settings:\n      levl: info\n"), 0o600))
	errb.Reset()
	code = run([]string{"check-config", path}, &out, &errb)
	require.Equal(t, 1, code)
	require.Contains(t, errb.String(), path+`:7: platforms[0].settings.levl: unknown field "levl" (known: level)`)
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 2, run(nil, &out, &errb))
	require.Contains(t, errb.String(), "Usage:")
	require.Equal(t, 2, run([]string{"frobnicate"}, &out, &errb))
	require.Contains(t, errb.String(), `unknown command "frobnicate"`)
	require.Equal(t, 2, run([]string{"check-config"}, &out, &errb))
	out.Reset()
	require.Equal(t, 0, run([]string{"version"}, &out, &errb))
	require.NotEmpty(t, strings.TrimSpace(out.String()))
}

func TestRunRejectsBadConfig(t *testing.T) {
	var errb bytes.Buffer
	require.Equal(t, 1, run([]string{"run", "--config", "does-not-exist.yaml"}, io.Discard, &errb))
	require.Contains(t, errb.String(), "does-not-exist.yaml: no such file or directory")
}

func TestExecRefusesBadInvocations(t *testing.T) {
	for args, want := range map[string]string{
		"exec":                        "name an executor type after --",
		"exec -- kubctl get pods":     `unknown executor type "kubctl" (known: `,
		"exec -- run probe":           `unknown executor type "run"`,
		"exec --settings [ -- helm x": "--settings: parse settings",
	} {
		var out, errb bytes.Buffer
		code := run(strings.Fields(args), &out, &errb)
		require.NotEqual(t, 0, code, args)
		require.Contains(t, errb.String(), want, args)
		require.Empty(t, out.String(), args)
	}
}
