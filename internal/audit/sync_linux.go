//go:build linux

package audit

import (
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// writeDSync writes p at f's offset with RWF_DSYNC: pwritev2 returns once
// p is on stable storage as after an fdatasync (with the file size, if the
// write grew it). It holds a reference to the descriptor like fdatasync,
// and returns how many bytes it wrote.
func writeDSync(f *os.File, p []byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var werr error
	written := 0
	iov := [][]byte{p}
	if err := rc.Control(func(fd uintptr) {
		for len(iov[0]) > 0 {
			// Offset -1: write at, and advance, the file's offset, as
			// f.Write does.
			n, err := unix.Pwritev2(int(fd), iov, -1, unix.RWF_DSYNC)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				werr = err
				return
			}
			if n == 0 {
				werr = io.ErrShortWrite
				return
			}
			written += n
			iov[0] = iov[0][n:]
		}
	}); err != nil {
		return 0, err
	}
	return written, werr
}

// fdatasync flushes f's data. It holds a reference to the descriptor, so
// it is safe against a concurrent Close (it then fails with os.ErrClosed).
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
