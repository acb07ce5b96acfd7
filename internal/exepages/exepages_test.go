package exepages

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// smapsText is a dynamically linked binary's mappings: its RELRO tables
// (the second r--p) hold the dynamic linker's relocations.
const smapsText = `00400000-01a5e000 r-xp 00000000 fd:01 1835021                            /usr/local/bin/kubechat
Size:              22904 kB
Rss:               20480 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me 
01a5e000-0355c000 r--p 0165e000 fd:01 1835021                            /usr/local/bin/kubechat
Rss:               10240 kB
Anonymous:             0 kB
VmFlags: rd mr mw me rr 
0355c000-03560000 r--p 0315c000 fd:01 1835021                            /usr/local/bin/kubechat
Rss:                  16 kB
Anonymous:            16 kB
VmFlags: rd mr mw me ac 
03560000-035e6000 rw-p 03160000 fd:01 1835021                            /usr/local/bin/kubechat
Anonymous:           120 kB
VmFlags: rd wr mr mw me ac 
035e6000-03640000 rw-p 00000000 00:00 0 
Anonymous:           360 kB
VmFlags: rd wr mr mw me ac 
7f3c8c000000-7f3c8c021000 r--p 00000000 fd:01 1835099                    /etc/other (deleted)
Anonymous:             0 kB
VmFlags: rd mr mw me 
`

func TestOnlyTheBinarysUnchangedReadOnlyMappings(t *testing.T) {
	m, err := parseSmaps([]byte(smapsText))
	require.NoError(t, err)
	require.Len(t, m, 5, "anonymous mappings are left out")
	got := releasable(m, 0xfd, 0x01, 1835021)
	require.Equal(t, []mapping{
		{start: 0x400000, end: 0x1a5e000, dev: "fd:01", inode: 1835021},
		{start: 0x1a5e000, end: 0x355c000, dev: "fd:01", inode: 1835021, random: true},
	}, got, "code and read-only data; never what the process wrote (relocations, the data segment), never another file")
	require.Empty(t, releasable(m, 0xfd, 0x02, 1835021), "same inode on another device")
}

func TestUnreadableSmapsAreAnError(t *testing.T) {
	for _, line := range []string{"00400000 r-xp 0 fd:01 1", "zz-01 r-xp 0 fd:01 1", "00400000-01 r-xp 0 fd:01 x", "00400000-01a5e000 r-xp",
		"00400000-01a5e000 r-xp 0 fd:01 1\nAnonymous: many kB"} {
		_, err := parseSmaps([]byte(line + "\n"))
		require.Error(t, err, line)
		require.Contains(t, err.Error(), "smaps line", "the error names the line")
	}
}
