package kubechat_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestArchitectureMatchesTheTree keeps ARCHITECTURE.md true: every path it
// names exists (paths with a <placeholder> name a recipe, and their fixed
// part must exist), and every package directly under internal/ is named.
func TestArchitectureMatchesTheTree(t *testing.T) {
	doc, err := os.ReadFile("ARCHITECTURE.md")
	require.NoError(t, err)
	text := strings.ReplaceAll(string(doc), "&lt;", "<")
	text = strings.ReplaceAll(text, "&gt;", ">")
	paths := regexp.MustCompile(`(?:internal|plugins|cmd|configs|e2e)/[A-Za-z0-9_./<>-]*[A-Za-z0-9_>]`).FindAllString(text, -1)
	require.NotEmpty(t, paths)
	for _, p := range paths {
		if i := strings.Index(p, "<"); i >= 0 {
			p = filepath.Dir(p[:i] + "x")
		}
		_, err := os.Stat(p)
		require.NoError(t, err, "ARCHITECTURE.md names %s, which is not in the tree", p)
	}
	entries, err := os.ReadDir("internal")
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() {
			require.Contains(t, text, "`internal/"+e.Name(), "ARCHITECTURE.md does not name internal/%s", e.Name())
		}
	}
}
