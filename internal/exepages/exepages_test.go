package exepages

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const maps = `00400000-01a5e000 r-xp 00000000 fd:01 1835021                            /usr/local/bin/kubechat
01a5e000-0355c000 r--p 0165e000 fd:01 1835021                            /usr/local/bin/kubechat
0355c000-035e6000 rw-p 0315c000 fd:01 1835021                            /usr/local/bin/kubechat
035e6000-03640000 rw-p 00000000 00:00 0 
c000000000-c004000000 rw-p 00000000 00:00 0 
7f3c8c000000-7f3c8c021000 r--p 00000000 fd:01 1835099                    /etc/other (deleted)
7ffd5a7e3000-7ffd5a804000 rw-p 00000000 00:00 0                          [stack]
`

func TestReadOnlyMappingsOfTheBinaryOnly(t *testing.T) {
	m, err := parseMaps([]byte(maps))
	require.NoError(t, err)
	require.Len(t, m, 4, "anonymous mappings are skipped")
	got := readOnlyOf(m, 0xfd, 0x01, 1835021)
	require.Equal(t, []mapping{
		{start: 0x400000, end: 0x1a5e000, dev: "fd:01", inode: 1835021},
		{start: 0x1a5e000, end: 0x355c000, dev: "fd:01", inode: 1835021},
	}, got, "code and read-only data; never the data segment, never another file")
	require.Empty(t, readOnlyOf(m, 0xfd, 0x02, 1835021), "same inode on another device")
}

func TestUnreadableMapsAreAnError(t *testing.T) {
	for _, line := range []string{"00400000 r-xp 0 fd:01 1", "zz-01 r-xp 0 fd:01 1", "00400000-01 r-xp 0 fd:01 x", "00400000-01a5e000 r-xp"} {
		_, err := parseMaps([]byte(line + "\n"))
		require.ErrorContains(t, err, line, "the error names the line")
	}
}
