//go:build !linux

package exepages

import "errors"

// Release does nothing where the kernel is not Linux.
func Release() (int, error) { return 0, nil }

// Released says that nothing is released where the kernel is not Linux.
func Released(int) error { return errors.New("pages are released on Linux only") }
