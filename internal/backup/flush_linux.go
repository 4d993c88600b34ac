//go:build linux

package backup

import (
	"os"

	"golang.org/x/sys/unix"
)

// flush starts writing the range [off, off+n) of f to disk and waits until
// what comes before it is written, with sync_file_range(2): no more than
// two ranges of the file are ever unwritten, and no journal commit or
// device cache flush is forced (the final fsync does both, once). Where
// sync_file_range is refused (some sandboxes), it fsyncs.
func flush(f *os.File, off, n int64) error {
	fd := int(f.Fd())
	if err := unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE); err != nil {
		return f.Sync()
	}
	if off == 0 {
		return nil
	}
	if err := unix.SyncFileRange(fd, 0, off, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER); err != nil {
		return f.Sync()
	}
	return nil
}
