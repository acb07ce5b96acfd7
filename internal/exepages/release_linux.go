package exepages

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Release unmaps the binary's code and read-only data from this process
// and evicts from the page cache what no other process maps, after
// advising the kernel to read those mappings a page at a time from then
// on (no readahead): each page faults back in, alone, when next run or
// read. It returns how many bytes of mappings it released. The data
// segment, which holds what the process wrote, is never touched.
//
// Call it once a start is over: what only starting needed is then read
// from disk again only if it runs again.
func Release() (int, error) {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("the executable: %w", err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("the executable: %w", err)
	}
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	maps, err := parseMaps(b)
	if err != nil {
		return 0, err
	}
	var n int
	for _, m := range readOnlyOf(maps, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino) {
		for _, advice := range []int{unix.MADV_RANDOM, unix.MADV_DONTNEED} {
			if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, uintptr(advice)); errno != 0 {
				return n, fmt.Errorf("madvise %#x-%#x: %w", m.start, m.end, errno)
			}
		}
		n += int(m.end - m.start)
	}
	// Only now unmapped here, the large folios can go; the pages that
	// fault back in are read singly into small ones.
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return n, fmt.Errorf("evict the executable's pages: %w", err)
	}
	return n, nil
}

// Released returns nil when every read-only mapping of process pid's
// executable is marked to be read without readahead (VmFlags "rr" in
// its smaps), as Release leaves them, or an error naming one that is not.
func Released(pid int) error {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/exe", pid), &st); err != nil {
		return fmt.Errorf("the executable: %w", err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return err
	}
	var seen int
	var mine *mapping
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "VmFlags:" {
			if mine == nil {
				continue
			}
			seen++
			if !slices.Contains(f[1:], "rr") {
				return fmt.Errorf("mapping %#x-%#x of the executable is not released", mine.start, mine.end)
			}
			continue
		}
		if strings.HasSuffix(f[0], ":") {
			continue // a field of the mapping above
		}
		m, err := parseMaps([]byte(line))
		if err != nil {
			return err
		}
		mine = nil
		if ro := readOnlyOf(m, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino); len(ro) == 1 {
			mine = &ro[0]
		}
	}
	if seen == 0 {
		return fmt.Errorf("no read-only mapping of the executable in /proc/%d/smaps", pid)
	}
	return nil
}
