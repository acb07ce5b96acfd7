// Command modzip copies the files of a Go module zip that match a pattern
// into a directory, flat: testbin takes Argo CD's CRDs from its module zip
// this way, because the go command stores that module but will not extract
// it (it needs a newer Go), and a fresh machine may have no unzip.
//
//	go run ./hack/modzip ZIP PATTERN DIR
//
// PATTERN is a path.Match pattern over the paths inside the zip.
package main

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: modzip ZIP PATTERN DIR")
		os.Exit(2)
	}
	n, err := extract(os.Args[1], os.Args[2], os.Args[3])
	if err == nil && n == 0 {
		err = fmt.Errorf("no file in %s matches %s", os.Args[1], os.Args[2])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "modzip:", err)
		os.Exit(1)
	}
}

// extract writes each file of the zip whose path matches pattern into dir
// under its base name, and returns how many it wrote.
func extract(zipPath, pattern, dir string) (int, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return 0, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	r, err := zip.OpenReader(zipPath)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n := 0
	for _, f := range r.File {
		if ok, _ := path.Match(pattern, f.Name); !ok || f.FileInfo().IsDir() {
			continue
		}
		if err := write(f, filepath.Join(dir, path.Base(f.Name))); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func write(f *zip.File, to string) error {
	in, err := f.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	return out.Close()
}
