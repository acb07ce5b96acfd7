package app

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
)

// fileWatcher tells when the config files' content changed. It reads each
// file through its path, following symlinks, so it sees both a file
// written in place and the kubelet's update of a ConfigMap volume (a new
// directory behind the ..data symlink, swapped in one rename). A content
// counts as changed once it read the same on two polls in a row, so that
// a file caught half written is not taken; a content is taken (tried)
// once, so that an invalid file is reported once, not at every poll.
type fileWatcher struct {
	paths []string
	taken string // the content the agent runs, or last tried
	seen  string // the content the last poll read
}

func newFileWatcher(paths []string) *fileWatcher {
	h := hashFiles(paths)
	return &fileWatcher{paths: paths, taken: h, seen: h}
}

// changed reads the files and reports whether their content changed,
// and settled, since it was last taken; it then counts as taken.
func (w *fileWatcher) changed() bool {
	if len(w.paths) == 0 {
		return false
	}
	h := hashFiles(w.paths)
	settled := h == w.seen
	w.seen = h
	if !settled || h == w.taken {
		return false
	}
	w.taken = h
	return true
}

// take records the files' content as it is now as taken (a reload asked
// for by a signal reads it).
func (w *fileWatcher) take() {
	h := hashFiles(w.paths)
	w.seen, w.taken = h, h
}

// hashFiles hashes the content of paths, in order; a file that cannot be
// read counts by its error, so that its coming back is a change too.
func hashFiles(paths []string) string {
	h := sha256.New()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			b = []byte("unreadable: " + err.Error())
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}
