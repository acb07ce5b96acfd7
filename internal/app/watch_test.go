package app

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// configMapVolume lays out dir as the kubelet lays out a ConfigMap volume:
// the data in a timestamped directory, ..data linking to it, and each key
// linking through ..data. It returns the function that updates it as the
// kubelet does: a new directory, swapped in with one rename of ..data.
func configMapVolume(t *testing.T, dir, key, content string) (update func(content string)) {
	t.Helper()
	n := 0
	write := func(content string) {
		n++
		ts := filepath.Join(dir, "..2026_12_01_10_00_0"+string(rune('0'+n)))
		require.NoError(t, os.Mkdir(ts, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(ts, key), []byte(content), 0o644))
		tmp := filepath.Join(dir, "..data_tmp")
		require.NoError(t, os.Symlink(filepath.Base(ts), tmp))
		require.NoError(t, os.Rename(tmp, filepath.Join(dir, "..data")))
	}
	write(content)
	require.NoError(t, os.Symlink(filepath.Join("..data", key), filepath.Join(dir, key)))
	return write
}

// TestWatcherSeesConfigMapUpdate: the kubelet's swap of ..data is a
// change, taken once it read the same twice; nothing else is.
func TestWatcherSeesConfigMapUpdate(t *testing.T) {
	dir := t.TempDir()
	update := configMapVolume(t, dir, "kubechat.yaml", "cluster: {name: a}\n")
	w := newFileWatcher([]string{filepath.Join(dir, "kubechat.yaml")})
	require.False(t, w.changed(), "nothing changed")

	update("cluster: {name: b}\n")
	require.False(t, w.changed(), "a new content is taken once it read the same twice")
	require.True(t, w.changed())
	require.False(t, w.changed(), "taken once")

	update("cluster: {name: b}\n")
	require.False(t, w.changed(), "a new directory with the same content is no change")
	require.False(t, w.changed())
}

// TestWatcherSeesWrites: a file written in place is a change; one caught
// half written is not taken before it settled; a content that was taken
// (even if refused) is not taken again, and a signal's reload takes what
// is there.
func TestWatcherSeesWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubechat.yaml")
	require.NoError(t, os.WriteFile(path, []byte("cluster: {name: a}\n"), 0o600))
	w := newFileWatcher([]string{path})

	require.NoError(t, os.WriteFile(path, []byte("cluster: {na"), 0o600))
	require.False(t, w.changed())
	require.NoError(t, os.WriteFile(path, []byte("cluster: {name: b}\n"), 0o600))
	require.False(t, w.changed(), "still being written")
	require.True(t, w.changed())
	require.False(t, w.changed())

	require.NoError(t, os.WriteFile(path, []byte("cluster: {name: c}\n"), 0o600))
	w.take()
	require.False(t, w.changed(), "a signal's reload took it")
	require.False(t, w.changed())

	require.NoError(t, os.Remove(path))
	require.False(t, w.changed())
	require.True(t, w.changed(), "a file gone is a change: its reload reports it")
	require.NoError(t, os.WriteFile(path, []byte("cluster: {name: c}\n"), 0o600))
	require.False(t, w.changed())
	require.True(t, w.changed(), "and so is its return")
}

// TestWatcherWithoutFiles: the embedded config has nothing to watch.
func TestWatcherWithoutFiles(t *testing.T) {
	w := newFileWatcher(nil)
	require.False(t, w.changed())
}
