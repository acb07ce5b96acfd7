package kubechat_test

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/cli"
)

// shownCommands returns, per file, the lines of the fenced code blocks in
// the README, CONTRIBUTING.md and docs/, split at pipes and "&&" and
// without a leading "$ " prompt.
func shownCommands(t *testing.T) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("docs", "*.md"))
	require.NoError(t, err)
	files = append(files, "README.md", "CONTRIBUTING.md")
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		in := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				in = !in
				continue
			}
			if !in {
				continue
			}
			for _, part := range regexp.MustCompile(`\s\|\s|&&`).Split(line, -1) {
				part = strings.TrimPrefix(strings.TrimSpace(part), "$ ")
				// A usage summary explains each line after a wide gap.
				if i := strings.Index(part, "  "); i > 0 {
					part = part[:i]
				}
				out[f] = append(out[f], part)
			}
		}
	}
	return out
}

// TestDocumentedCLICommandsExist keeps the docs true to the CLI: every
// "kubechat COMMAND --flag" shown in a code block names a command and
// flags that exist (usage summaries' [optional] and a|b parts included).
func TestDocumentedCLICommandsExist(t *testing.T) {
	seen := 0
	for file, lines := range shownCommands(t) {
		for _, line := range lines {
			fields := strings.Fields(line)
			if len(fields) < 2 || fields[0] != "kubechat" || strings.HasSuffix(fields[1], ":") {
				continue
			}
			seen++
			root := cli.New(io.Discard, io.Discard)
			root.InitDefaultHelpCmd()
			root.InitDefaultCompletionCmd()
			cmd, _, err := root.Find(fields[1:2])
			require.NoError(t, err, "%s shows %q", file, line)
			require.True(t, cmd != root, "%s shows %q: no such command", file, line)
			flags := fields[2:]
			if cmd.HasSubCommands() && len(flags) > 0 {
				// A command group: "kubechat fleet credentials --cluster x",
				// or a usage summary of its commands: "completion bash|zsh".
				var sub *cobra.Command
				for _, name := range strings.Split(flags[0], "|") {
					c, _, err := cmd.Find([]string{name})
					require.NoError(t, err, "%s shows %q", file, line)
					require.True(t, c != cmd, "%s shows %q: %s has no command %s", file, line, cmd.Name(), name)
					if sub == nil {
						sub = c
					}
				}
				cmd, flags = sub, flags[1:]
			}
			for _, f := range flags {
				if f == "--" {
					break
				}
				for _, alt := range strings.Split(strings.Trim(f, "[]."), "|") {
					if !strings.HasPrefix(alt, "-") {
						continue
					}
					name, _, _ := strings.Cut(strings.TrimLeft(alt, "-"), "=")
					var flag *pflag.Flag
					if strings.HasPrefix(alt, "--") {
						flag = cmd.Flags().Lookup(name)
					} else {
						flag = cmd.Flags().ShorthandLookup(name)
					}
					require.NotNil(t, flag, "%s shows %q: %s has no flag %s", file, line, cmd.Name(), alt)
				}
			}
		}
	}
	require.Greater(t, seen, 5, "the docs show the CLI")
}

// TestDocumentedMakeTargetsExist: every "make TARGET" shown in a code block
// is a target of the Makefile.
func TestDocumentedMakeTargetsExist(t *testing.T) {
	mk, err := os.ReadFile("Makefile")
	require.NoError(t, err)
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(string(mk), -1) {
		targets[m[1]] = true
	}
	seen := 0
	for file, lines := range shownCommands(t) {
		for _, line := range lines {
			fields := strings.Fields(line)
			if len(fields) < 2 || fields[0] != "make" {
				continue
			}
			for _, f := range fields[1:] {
				if strings.HasPrefix(f, "#") {
					break
				}
				if strings.Contains(f, "=") || strings.HasPrefix(f, "-") {
					continue
				}
				seen++
				require.True(t, targets[f], "%s shows %q: the Makefile has no target %s", file, line, f)
			}
		}
	}
	require.Greater(t, seen, 3, "the docs show make targets")
}
