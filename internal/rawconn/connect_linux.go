package rawconn

import (
	"errors"
	"net/netip"
	"os"
	"syscall"
	"unsafe"
)

// ConnectDatagram connects fd, a datagram socket, to addr (IPv4, or IPv6
// without a zone) with a raw call. A datagram socket's connect only sets
// its peer and binds a random source port: it never waits, so the
// scheduler need not hear of it.
func ConnectDatagram(fd int, addr netip.AddrPort) error {
	ip := addr.Addr().Unmap()
	port := addr.Port()
	var e syscall.Errno
	switch {
	case ip.Is4():
		sa := syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ip.As4()}
		*(*[2]byte)(unsafe.Pointer(&sa.Port)) = [2]byte{byte(port >> 8), byte(port)}
		_, _, e = syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	case ip.Is6() && ip.Zone() == "":
		sa := syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: ip.As16()}
		*(*[2]byte)(unsafe.Pointer(&sa.Port)) = [2]byte{byte(port >> 8), byte(port)}
		_, _, e = syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	default:
		return errors.New("rawconn: connect: not an IPv4 or unzoned IPv6 address: " + addr.String())
	}
	if e != 0 {
		return os.NewSyscallError("connect", e)
	}
	return nil
}
