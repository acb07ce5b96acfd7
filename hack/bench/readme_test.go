package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReadmeParagraphIsReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	require.NoError(t, os.WriteFile(path, []byte("# x\n\n"+readmeBegin+"\nold figures\n"+readmeEnd+"\n\n## Next\n"), 0o644))
	f := figures{points: []scalePoint{
		{pods: 1000, ready: 512 * time.Millisecond, rss: 49.7, anon: 22.5, p50: 14 * time.Millisecond, cpuPer1k: 410 * time.Millisecond},
		{pods: 10000, ready: 5015 * time.Millisecond, rss: 54.9, anon: 43.9, p50: 25 * time.Millisecond, cpuPer1k: 560 * time.Millisecond},
	}, inProcess: 20 * time.Millisecond, inPod: 231 * time.Millisecond, levels: []level{{users: 20, perSec: 7.5, p50: 2405 * time.Millisecond}}}
	text := f.paragraph()
	require.Contains(t, text, "| 10k | 5s | 55 MiB | 44 MiB | 25ms | 560ms |")
	require.Contains(t, text, "2.4 KiB of anonymous memory per cached pod from 1k to 10k pods")
	require.Contains(t, text, "Twenty users at once run 7.5")
	require.NoError(t, writeReadme(path, text))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "# x\n\n"+readmeBegin+"\n"+text+readmeEnd+"\n\n## Next\n", string(b))
	// Again: the figures are replaced, not added.
	require.NoError(t, writeReadme(path, text))
	b2, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(b), string(b2))
}

func TestReadmeWithoutMarkersIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	require.NoError(t, os.WriteFile(path, []byte("# x\n"), 0o644))
	err := writeReadme(path, "figures\n")
	require.ErrorContains(t, err, readmeBegin)
	b, _ := os.ReadFile(path)
	require.Equal(t, "# x\n", string(b), "left as it was")
}
