//go:build linux

package forward

import (
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"github.com/shardns/shardns/internal/rawconn"
)

// dialUDP opens a UDP socket connected to addr for one query, named name
// in its errors. It makes the socket the net package would (non-blocking,
// close-on-exec, on the runtime's poller) without the calls that package
// spends describing it (getsockname, getpeername) or setting SO_BROADCAST,
// none of which a query's socket uses; socket, connect, write and read
// are raw calls (internal/rawconn), so that on a quiet server a query
// does not wake the runtime's monitor thread for each of them. A zoned
// IPv6 address goes through net.DialUDP.
func dialUDP(addr netip.AddrPort, name string) (udpSocket, error) {
	ip := addr.Addr().Unmap()
	family := syscall.AF_INET
	switch {
	case ip.Is4():
	case ip.Is6() && ip.Zone() == "":
		family = syscall.AF_INET6
	default:
		return dialNetUDP(addr)
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", os.NewSyscallError("socket", err))
	}
	if err := rawconn.ConnectDatagram(fd, netip.AddrPortFrom(ip, addr.Port())); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("connect: %w", err)
	}
	// A non-blocking descriptor goes on the poller, so deadlines apply.
	f := os.NewFile(uintptr(fd), name)
	d, err := rawconn.NewDatagram(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("socket: %w", err)
	}
	return d, nil
}
