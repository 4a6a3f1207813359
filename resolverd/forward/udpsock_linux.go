//go:build linux

package forward

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"syscall"
)

// dialUDP opens a UDP socket connected to addr for one query, named name
// in its errors. It makes
// the socket the net package would (non-blocking, close-on-exec, on the
// runtime's poller) without the calls that package spends describing it
// (getsockname, getpeername) or setting SO_BROADCAST, none of which a
// query's socket uses. A zoned IPv6 address goes through net.DialUDP.
func dialUDP(addr netip.AddrPort, name string) (udpSocket, error) {
	ip := addr.Addr().Unmap()
	var (
		family int
		sa     syscall.Sockaddr
	)
	switch {
	case ip.Is4():
		family, sa = syscall.AF_INET, &syscall.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}
	case ip.Is6() && ip.Zone() == "":
		family, sa = syscall.AF_INET6, &syscall.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}
	default:
		return dialNetUDP(addr)
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", os.NewSyscallError("socket", err))
	}
	if err := syscall.Connect(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("connect: %w", os.NewSyscallError("connect", err))
	}
	// A non-blocking descriptor goes on the poller, so deadlines apply.
	return fileSocket{os.NewFile(uintptr(fd), name)}, nil
}

// fileSocket is a connected UDP socket held as an *os.File.
type fileSocket struct{ *os.File }

// Read reads one datagram. An empty one reads as 0 bytes, not as the end
// of a file: it is one more datagram for the caller to ignore.
func (s fileSocket) Read(p []byte) (int, error) {
	n, err := s.File.Read(p)
	if n == 0 && errors.Is(err, io.EOF) {
		return 0, nil
	}
	return n, err
}
