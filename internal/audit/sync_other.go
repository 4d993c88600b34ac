//go:build !linux

package audit

import (
	"os"
	"syscall"
)

// writeDSync is refused where there is no pwritev2 with RWF_DSYNC (Linux
// only): the log then writes and syncs in two calls (dsyncUnsupported).
func writeDSync(*os.File, []byte) (int, error) { return 0, syscall.ENOSYS }

// fdatasync flushes f's data with f.Sync: there is no fdatasync here (on
// macOS, Sync is fcntl F_FULLFSYNC, which also flushes the drive's cache).
func fdatasync(f *os.File) error { return f.Sync() }
