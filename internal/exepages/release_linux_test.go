package exepages

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// written is in the data segment, which Release must leave as written.
var written = []byte("before")

func TestReleaseKeepsWhatTheProcessWrote(t *testing.T) {
	written[0] = 'B'
	// The test binary was just written: let its pages be clean, as a
	// deployed binary's are, so that they can be evicted.
	f, err := os.Open("/proc/self/exe")
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	require.ErrorContains(t, Released(os.Getpid()), "is not released")
	before := residentKiB(t)
	n, err := Release()
	require.NoError(t, err)
	require.Positive(t, n, "the test binary's code and read-only data")
	after := residentKiB(t)
	t.Logf("resident read-only pages of the test binary: %d KiB before, %d KiB after releasing %d MiB of mappings", before, after, n>>20)
	require.Less(t, after, before)
	require.NoError(t, Released(os.Getpid()))
	require.Equal(t, "Before", string(written), "the data segment is untouched")
	// The code still runs: this line, and a second release.
	_, err = Release()
	require.NoError(t, err)
}

// residentKiB sums Rss over this binary's read-only mappings in
// /proc/self/smaps.
func residentKiB(t *testing.T) int {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Stat("/proc/self/exe", &st))
	f, err := os.Open("/proc/self/smaps")
	require.NoError(t, err)
	defer f.Close()
	var sum int
	var in bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") {
			m, err := parseHeader(line, fields)
			require.NoError(t, err)
			in = len(releasable([]mapping{m}, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)) == 1
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok && in {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			require.NoError(t, err)
			sum += kb
		}
	}
	require.NoError(t, sc.Err())
	return sum
}
