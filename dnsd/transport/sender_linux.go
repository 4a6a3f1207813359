package transport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// sendSocket is a UDP socket that only sends: bound to a served address
// and port beside the sockets that read it (SO_REUSEPORT), so replies
// leave from the address the client asked, but never given to the Go
// runtime's poller. A socket in the poller is woken for EPOLLOUT each time
// the kernel frees a datagram it sent, which on loopback is at once, for
// every reply; profiles showed that wake-up at about an eighth of dnsd's
// CPU on cache hits. This one is blocking, as a UDP send nearly never
// has to wait, and a reuseport program steers every arriving datagram to
// the reading sockets, so it receives nothing.
type sendSocket struct {
	fd      int
	family  int // AF_INET or AF_INET6
	scratch sync.Pool
}

// sendScratch is one sendmmsg call's headers, kept between calls.
type sendScratch struct {
	hdrs  [udpBatch]mmsghdr
	iovs  [udpBatch]unix.Iovec
	names [udpBatch]unix.RawSockaddrInet6 // large enough for either family
}

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [unsafe.Sizeof(uintptr(0)) - 4]byte
}

// openSendSockets binds one send socket beside each of pcs, the reading
// sockets of one address (bound with SO_REUSEPORT, in this order), and
// steers the address's datagrams to the reading sockets only.
func openSendSockets(pcs []*net.UDPConn) ([]batchWriter, error) {
	var family, v6only int
	var sa unix.Sockaddr
	rc, err := pcs[0].SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		family, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		if serr == nil && family == unix.AF_INET6 {
			v6only, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		}
		if serr == nil {
			sa, serr = unix.Getsockname(int(fd))
		}
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	out := make([]batchWriter, 0, len(pcs))
	fail := func(err error) ([]batchWriter, error) {
		for _, w := range out {
			w.(*sendSocket).Close()
		}
		return nil, err
	}
	for range pcs {
		fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return fail(os.NewSyscallError("socket", err))
		}
		s := &sendSocket{fd: fd, family: family}
		s.scratch.New = func() any { return new(sendScratch) }
		out = append(out, s)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail(os.NewSyscallError("setsockopt SO_REUSEPORT", err))
		}
		if family == unix.AF_INET6 {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
				return fail(os.NewSyscallError("setsockopt IPV6_V6ONLY", err))
			}
		}
		if err := unix.Bind(fd, sa); err != nil {
			return fail(os.NewSyscallError("bind", err))
		}
	}
	// The group's sockets are numbered in the order they were bound: the
	// reading ones first. The program picks one of them by the query's
	// ID (a datagram too short to have one goes to the first).
	n := uint32(len(pcs))
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 0},
		{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: n},
		{Code: unix.BPF_RET | unix.BPF_A},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(out[0].(*sendSocket).fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog); err != nil {
		return fail(os.NewSyscallError("setsockopt SO_ATTACH_REUSEPORT_CBPF", err))
	}
	return out, nil
}

// WriteBatch sends ms in one sendmmsg call and returns how many were sent,
// as ipv4.PacketConn's WriteBatch does; flags are sendmmsg's.
func (s *sendSocket) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	sc := s.scratch.Get().(*sendScratch)
	defer s.scratch.Put(sc)
	ms = ms[:min(len(ms), udpBatch)]
	for i := range ms {
		b := ms[i].Buffers[0]
		iov := &sc.iovs[i]
		iov.Base = nil
		if len(b) > 0 {
			iov.Base = &b[0]
		}
		iov.SetLen(len(b))
		nameLen, err := s.putAddr(&sc.names[i], ms[i].Addr)
		if err != nil {
			if i == 0 {
				return 0, err
			}
			ms = ms[:i] // send those before it; the next call fails on it
			break
		}
		h := &sc.hdrs[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&sc.names[i])), Namelen: nameLen, Iov: iov}
		h.SetIovlen(1)
	}
	// First without telling the scheduler: a call that cannot block is
	// not a system call it should plan around. Told (Syscall6), it hands
	// the goroutine's P to another thread once the call has lasted a
	// sysmon tick (20 µs, about four replies on loopback), which then
	// wakes, finds nothing to do and sleeps again: a context switch or
	// two per call. Only a full send buffer blocks, and that call is told.
	n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&sc.hdrs[0])), uintptr(len(ms)), uintptr(flags|unix.MSG_DONTWAIT), 0, 0)
	if errno == unix.EAGAIN {
		n, _, errno = unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&sc.hdrs[0])), uintptr(len(ms)), uintptr(flags), 0, 0)
	}
	for i := range ms {
		sc.iovs[i].Base = nil // hold no reply past its call
	}
	if errno != 0 {
		return 0, os.NewSyscallError("sendmmsg", errno)
	}
	return int(n), nil
}

// putAddr writes to as a sockaddr of the socket's family into raw and
// returns its length.
func (s *sendSocket) putAddr(raw *unix.RawSockaddrInet6, to net.Addr) (uint32, error) {
	ua, ok := to.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("transport: reply to %v: not a UDP address", to)
	}
	port := uint16(ua.Port)
	if s.family == unix.AF_INET {
		ip4 := ua.IP.To4()
		if ip4 == nil {
			return 0, fmt.Errorf("transport: reply to %v from an IPv4 socket", to)
		}
		r4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		*r4 = unix.RawSockaddrInet4{Family: unix.AF_INET}
		copy(r4.Addr[:], ip4)
		putPort(&r4.Port, port)
		return unix.SizeofSockaddrInet4, nil
	}
	ip16 := ua.IP.To16()
	if ip16 == nil {
		return 0, fmt.Errorf("transport: reply to %v: no IP address", to)
	}
	*raw = unix.RawSockaddrInet6{Family: unix.AF_INET6}
	copy(raw.Addr[:], ip16)
	putPort(&raw.Port, port)
	if ua.Zone != "" {
		raw.Scope_id = zoneIndex(ua.Zone)
	}
	return unix.SizeofSockaddrInet6, nil
}

// putPort stores port in network byte order, as sockaddr wants it.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// zoneIndex is the interface index of an IPv6 zone (a link-local client's
// interface, by name or number); 0 if there is none such.
func zoneIndex(zone string) uint32 {
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	var n uint32
	for _, c := range zone {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint32(c-'0')
	}
	return n
}

// Close closes the socket.
func (s *sendSocket) Close() error {
	err := unix.Close(s.fd)
	if err != nil && !errors.Is(err, syscall.EBADF) {
		return os.NewSyscallError("close", err)
	}
	return nil
}
