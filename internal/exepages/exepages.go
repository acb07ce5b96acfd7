// Package exepages keeps the agent's own binary from filling its resident
// memory.
//
// The agent is one large binary (code, read-only data and the function
// table, well over 100 MB), of which a start and a steady state run only
// a small part. Linux may hold such a file in the page cache in folios of
// up to 2 MiB, made by readahead, and a fault maps the whole folio, so
// that package init alone, reading a few bytes here and there, kept about
// 80 MiB of the binary resident. Release, called once a start is over,
// unmaps the binary's read-only mappings, evicts the folios that no other
// process maps and has the kernel read those mappings a page at a time
// from then on: what runs again is read back from disk, 4 KiB at a time.
package exepages

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// mapping is one mapping of a file in /proc/PID/smaps.
type mapping struct {
	start, end uintptr
	writable   bool
	dev        string // major:minor, in hex
	inode      uint64
	// changed says that some of its pages are the process's own copies
	// (Anonymous in smaps), such as the dynamic linker's relocations in
	// a mapping made read-only after them: dropping those would lose
	// what was written.
	changed bool
	// random says it is read without readahead (VmFlags "rr").
	random bool
}

// parseSmaps reads /proc/PID/smaps text; mappings of no file are left out.
func parseSmaps(b []byte) ([]mapping, error) {
	var out []mapping
	var cur *mapping // the file mapping whose fields follow, if any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0:
			continue
		case strings.HasSuffix(f[0], ":"):
			if cur == nil {
				continue
			}
			switch f[0] {
			case "Anonymous:":
				if len(f) < 2 {
					return nil, fmt.Errorf("smaps line %q: no size", sc.Text())
				}
				kb, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("smaps line %q: unreadable size", sc.Text())
				}
				cur.changed = kb > 0
			case "VmFlags:":
				cur.random = slices.Contains(f[1:], "rr")
			}
			continue
		}
		m, err := parseHeader(sc.Text(), f)
		if err != nil {
			return nil, err
		}
		cur = nil
		if m.inode != 0 {
			out = append(out, m)
			cur = &out[len(out)-1]
		}
	}
	return out, sc.Err()
}

// parseHeader reads a mapping's first line, "address perms offset dev
// inode [pathname]", split into f.
func parseHeader(line string, f []string) (mapping, error) {
	if len(f) < 5 {
		return mapping{}, fmt.Errorf("smaps line %q: want at least 5 fields", line)
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return mapping{}, fmt.Errorf("smaps line %q: address %q is not start-end", line, f[0])
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	inode, err3 := strconv.ParseUint(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || end < start || len(f[1]) < 4 {
		return mapping{}, fmt.Errorf("smaps line %q: unreadable", line)
	}
	return mapping{start: uintptr(start), end: uintptr(end), writable: f[1][1] == 'w', dev: f[3], inode: inode}, nil
}

// releasable returns the mappings of the file with this device and inode
// that Release may drop: those the process cannot write and never wrote
// (code and read-only data), never the data segment or relocated tables.
func releasable(maps []mapping, major, minor uint32, inode uint64) []mapping {
	dev := fmt.Sprintf("%02x:%02x", major, minor)
	var out []mapping
	for _, m := range maps {
		if m.inode == inode && m.dev == dev && !m.writable && !m.changed {
			out = append(out, m)
		}
	}
	return out
}
