package exepages

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Release unmaps the binary's code and read-only data from this process
// and evicts from the page cache what no other process maps, after
// advising the kernel to read those mappings a page at a time from then
// on (no readahead): each page faults back in, alone, when next run or
// read. It returns how many bytes of mappings it released. A mapping
// holding anything the process wrote (the data segment, or tables the
// dynamic linker relocated and then made read-only) is never touched.
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
	maps, err := smaps(os.Getpid())
	if err != nil {
		return 0, err
	}
	var n int
	for _, m := range releasable(maps, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino) {
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

// Released returns nil when every mapping of process pid's executable
// that Release may drop is marked to be read without readahead, as
// Release leaves them, or an error naming one that is not.
func Released(pid int) error {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/exe", pid), &st); err != nil {
		return fmt.Errorf("the executable: %w", err)
	}
	maps, err := smaps(pid)
	if err != nil {
		return err
	}
	ms := releasable(maps, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	if len(ms) == 0 {
		return fmt.Errorf("no read-only mapping of the executable in /proc/%d/smaps", pid)
	}
	for _, m := range ms {
		if !m.random {
			return fmt.Errorf("mapping %#x-%#x of the executable is not released", m.start, m.end)
		}
	}
	return nil
}

func smaps(pid int) ([]mapping, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, err
	}
	return parseSmaps(b)
}
