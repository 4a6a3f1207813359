//go:build linux && race

package rawconn

import (
	"errors"
	"syscall"
)

// Under the race detector the calls are the syscall package's: they tell
// the detector that what one goroutine writes to a socket happens before
// another reads it, an order raw calls would hide, so that code
// synchronised only through the network is not reported as racing.
// Everything around the calls is the same as without it.

func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return max(n, 0), errno(err)
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	return max(n, 0), errno(err)
}

func errno(err error) syscall.Errno {
	var e syscall.Errno
	if err != nil && !errors.As(err, &e) {
		return syscall.EIO
	}
	return e
}
