//go:build unix

package transport

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortWorks says whether reusePort can share a UDP port.
const reusePortWorks = true

// reusePort sets SO_REUSEPORT on a socket before it is bound.
func reusePort(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}
