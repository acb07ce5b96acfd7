// Package exepages keeps the agent's own binary from filling its resident
// memory.
//
// The agent is one large static binary (code, read-only data and the
// function table, well over 100 MB), of which a start and a steady state
// run only a small part. Linux may hold such a file in the page cache in
// folios of up to 2 MiB and map each with a single page-table entry, so
// that one byte read during package init makes 2 MiB resident: measured
// at about 95 MiB of file-backed RSS for an idle agent. Release stops
// that for the binary's read-only mappings and drops what was mapped so
// far; later reads map the pages around them only. The pages stay in the
// page cache, so nothing is read from disk again.
package exepages

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// mapping is one line of /proc/self/maps that maps part of a file.
type mapping struct {
	start, end uintptr
	writable   bool
	dev        string // major:minor, in hex
	inode      uint64
}

// parseMaps reads /proc/PID/maps text; it skips lines that map no file.
func parseMaps(b []byte) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// address perms offset dev inode [pathname]
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			return nil, fmt.Errorf("maps line %q: want at least 5 fields", sc.Text())
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			return nil, fmt.Errorf("maps line %q: address %q is not start-end", sc.Text(), f[0])
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		inode, err3 := strconv.ParseUint(f[4], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || end < start || len(f[1]) < 4 {
			return nil, fmt.Errorf("maps line %q: unreadable", sc.Text())
		}
		if inode == 0 {
			continue
		}
		out = append(out, mapping{start: uintptr(start), end: uintptr(end), writable: f[1][1] == 'w', dev: f[3], inode: inode})
	}
	return out, sc.Err()
}

// readOnlyOf returns the mappings of the file with this device and inode
// that the process cannot write: code and read-only data, never the data
// segment, whose pages may hold what the process changed.
func readOnlyOf(maps []mapping, major, minor uint32, inode uint64) []mapping {
	dev := fmt.Sprintf("%02x:%02x", major, minor)
	var out []mapping
	for _, m := range maps {
		if m.inode == inode && m.dev == dev && !m.writable {
			out = append(out, m)
		}
	}
	return out
}
