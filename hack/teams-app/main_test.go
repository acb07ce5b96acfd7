package main

import (
	"archive/zip"
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWritesThePackage(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bin", "app.zip")
	var stdout, stderr bytes.Buffer
	require.NoError(t, run([]string{"-app-id", "3f6a1c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", "-name", "kubechat-prod", "-o", out}, &stdout, &stderr))
	require.Contains(t, stdout.String(), "wrote "+out)
	zr, err := zip.OpenReader(out)
	require.NoError(t, err)
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	require.ElementsMatch(t, []string{"manifest.json", "color.png", "outline.png"}, names)
}

func TestRefusesBadArguments(t *testing.T) {
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"no app id":  {"-o", filepath.Join(dir, "a.zip")},
		"not a GUID": {"-app-id", "kubechat", "-o", filepath.Join(dir, "b.zip")},
		"extra":      {"-app-id", "3f6a1c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", "x"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(args, &stdout, &stderr)
		require.Error(t, err, name)
		require.Empty(t, stdout.String(), name)
	}
	require.NoFileExists(t, filepath.Join(dir, "a.zip"))
	require.NoFileExists(t, filepath.Join(dir, "b.zip"))
}
