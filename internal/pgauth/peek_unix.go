//go:build linux || darwin || freebsd || netbsd || openbsd

package pgauth

import (
	"errors"
	"net"
	"syscall"
)

// peek reports whether c has bytes waiting or has been closed by its
// peer: a non-blocking MSG_PEEK of one byte, which consumes nothing.
func peek(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	waiting := false
	var b [1]byte
	// Control, not Read: Read would wait for the descriptor's read lock,
	// which pgconn's background reader may hold in a blocked read.
	err = rc.Control(func(fd uintptr) {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Data (n > 0), EOF (n == 0, no error) or a socket error all
		// count; only "nothing yet" does not.
		waiting = !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR)
	})
	return err == nil && waiting
}
