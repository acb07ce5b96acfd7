package configs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDocSnippetsAreExamples keeps the guides in docs/ honest: every YAML
// or JSON block in them is a verbatim part of a file under configs/, where
// a test loads it (check-config for the agent's configs, the platforms'
// own tests for the app manifests).
func TestDocSnippetsAreExamples(t *testing.T) {
	var examples []string
	require.NoError(t, filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext == ".yaml" || ext == ".json" {
			data, err := os.ReadFile(path)
			examples = append(examples, string(data))
			return err
		}
		return nil
	}))
	docs, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	require.NoError(t, err)
	block := regexp.MustCompile("(?ms)^```(yaml|json)\n(.*?)^```$")
	for _, doc := range docs {
		data, err := os.ReadFile(doc)
		require.NoError(t, err)
		for _, m := range block.FindAllStringSubmatch(string(data), -1) {
			found := false
			for _, ex := range examples {
				found = found || strings.Contains(ex, m[2])
			}
			require.True(t, found, "%s: this %s block is not part of any file under configs/:\n%s", doc, m[1], m[2])
		}
	}
}
