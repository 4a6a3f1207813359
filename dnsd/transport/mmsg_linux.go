package transport

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The datagram calls on Linux: recvmmsg and sendmmsg made directly, as raw
// calls that cannot block (MSG_DONTWAIT). A call the scheduler is told of
// (syscall.Syscall, as x/net makes them) that lasts a sysmon tick (20 µs,
// about four replies on loopback) has its P handed to another thread,
// which wakes, finds nothing to do and sleeps again: a context switch or
// two per call, and a sixth to a third of dnsd's CPU on Redis hits. The
// peer's address is read from the sockaddr without allocating.

// mmsgReader reads a socket with recvmmsg, waiting in the poller when
// nothing is there.
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  [udpBatch]mmsghdr
	iovs  [udpBatch]unix.Iovec
	names [udpBatch]unix.RawSockaddrInet6 // large enough for either family
	ctl   []ctlBuf                        // for the datagrams' destinations; nil: not asked for
}

// newDgramReader reads pc; with dstInfo (pc is a wildcard socket that
// recvDstInfo set up) it reports each datagram's destination in local.
func newDgramReader(pc *net.UDPConn, dstInfo bool) dgramReader {
	rc, err := pc.SyscallConn()
	if err != nil {
		return newXnetConn(pc)
	}
	r := &mmsgReader{rc: rc}
	if dstInfo {
		r.ctl = make([]ctlBuf, udpBatch)
	}
	return r
}

func (r *mmsgReader) readBatch(ms []dgram) (int, error) {
	ms = ms[:min(len(ms), udpBatch)]
	for i := range ms {
		iov := &r.iovs[i]
		iov.Base = &ms[i].b[0]
		iov.SetLen(len(ms[i].b))
		h := &r.hdrs[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&r.names[i])), Namelen: unix.SizeofSockaddrInet6, Iov: iov}
		h.SetIovlen(1)
		if r.ctl != nil {
			h.Control = (*byte)(unsafe.Pointer(&r.ctl[i]))
			h.SetControllen(ctlWords * 8)
		}
	}
	var n uintptr
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		n, _, errno = unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(ms)), unix.MSG_DONTWAIT, 0, 0)
		return errno != unix.EAGAIN
	})
	for i := range ms {
		r.iovs[i].Base = nil
	}
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", errno)
	}
	for i := range int(n) {
		ms[i].n = int(r.hdrs[i].len)
		ms[i].peer = peerOf(&r.names[i])
		if r.ctl != nil {
			ms[i].local = dstOf(r.ctl[i].bytes()[:min(int(r.hdrs[i].hdr.Controllen), ctlWords*8)])
		}
	}
	return int(n), nil
}

// peerOf is the address and port in sa (an IPv4 or IPv6 sockaddr), as
// net.UDPAddr.AddrPort would give them.
func peerOf(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), getPort(&s4.Port))
	case unix.AF_INET6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(zoneName(sa.Scope_id))
		}
		return netip.AddrPortFrom(a, getPort(&sa.Port))
	}
	return netip.AddrPort{}
}

// sendSocket is a UDP socket that only sends: bound to a served address
// and port beside the sockets that read it (SO_REUSEPORT), so replies
// leave from the address the client asked, but never given to the Go
// runtime's poller. A socket in the poller is woken for EPOLLOUT each time
// the kernel frees a datagram it sent, which on loopback is at once: one
// wake-up of the poller per reply. This one is blocking, as a UDP send
// nearly never has to wait, and a reuseport program steers every arriving
// datagram to the reading sockets, so it receives nothing.
type sendSocket struct {
	fd        int
	family    int // AF_INET or AF_INET6
	scratch   sync.Pool
	closeOnce sync.Once
}

// sendScratch is one sendmmsg call's headers, kept between calls.
type sendScratch struct {
	hdrs  [udpBatch]mmsghdr
	iovs  [udpBatch]unix.Iovec
	names [udpBatch]unix.RawSockaddrInet6 // large enough for either family
	ctl   [udpBatch]ctlBuf                // source addresses (see putSrc)
}

// mmsghdr is struct mmsghdr of recvmmsg(2) and sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [unsafe.Sizeof(uintptr(0)) - 4]byte
}

// openSendSockets binds one send socket beside each of pcs, the reading
// sockets of one address (bound with SO_REUSEPORT, in this order), and
// steers the address's datagrams to the reading sockets only.
func openSendSockets(pcs []*net.UDPConn) ([]replySocket, error) {
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
	out := make([]replySocket, 0, len(pcs))
	fail := func(err error) ([]replySocket, error) {
		for _, w := range out {
			w.Close()
		}
		return nil, err
	}
	var first *sendSocket
	for range pcs {
		fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return fail(os.NewSyscallError("socket", err))
		}
		s := &sendSocket{fd: fd, family: family}
		s.scratch.New = func() any { return new(sendScratch) }
		out = append(out, s)
		if first == nil {
			first = s
		}
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
	if err := unix.SetsockoptSockFprog(first.fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog); err != nil {
		return fail(os.NewSyscallError("setsockopt SO_ATTACH_REUSEPORT_CBPF", err))
	}
	return out, nil
}

func (s *sendSocket) writeBatch(ms []dgram) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	sc := s.scratch.Get().(*sendScratch)
	defer s.scratch.Put(sc)
	ms, err := sc.fill(s.family, ms)
	if err != nil {
		return 0, err
	}
	defer sc.release(len(ms))
	// Raw, as it cannot block; only a full send buffer makes it wait,
	// in a call the scheduler is told of.
	n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&sc.hdrs[0])), uintptr(len(ms)), unix.MSG_DONTWAIT, 0, 0)
	if errno == unix.EAGAIN {
		n, _, errno = unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&sc.hdrs[0])), uintptr(len(ms)), 0, 0, 0)
	}
	if errno != 0 {
		return 0, os.NewSyscallError("sendmmsg", errno)
	}
	return int(n), nil
}

// fill sets up sc's headers for sending ms, from a socket of family, and
// returns the datagrams it set up: those before the first that cannot be
// sent, or an error if that is the first. A datagram with a local address
// leaves from it.
func (sc *sendScratch) fill(family int, ms []dgram) ([]dgram, error) {
	ms = ms[:min(len(ms), udpBatch)]
	for i := range ms {
		b := ms[i].b
		iov := &sc.iovs[i]
		iov.Base = nil
		if len(b) > 0 {
			iov.Base = &b[0]
		}
		iov.SetLen(len(b))
		nameLen, err := putAddr(family, &sc.names[i], ms[i].peer)
		if err != nil {
			if i == 0 {
				return nil, err
			}
			return ms[:i], nil // send those before it; the next call fails on it
		}
		h := &sc.hdrs[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&sc.names[i])), Namelen: nameLen, Iov: iov}
		h.SetIovlen(1)
		if ms[i].local.IsValid() {
			if n := putSrc(&sc.ctl[i], family, ms[i].local); n > 0 {
				h.Control = (*byte)(unsafe.Pointer(&sc.ctl[i]))
				h.SetControllen(n)
			}
		}
	}
	return ms, nil
}

// release drops the first n headers' hold on the replies: none is held
// past its call.
func (sc *sendScratch) release(n int) {
	for i := range n {
		sc.iovs[i].Base = nil
	}
}

// connWriter sends replies through a reading socket, when no send socket
// could be bound beside it: sendmmsg, as sendSocket's, waiting in the
// poller when the send buffer is full.
type connWriter struct {
	rc      syscall.RawConn
	family  int
	scratch sync.Pool
}

// newReplyWriter is the writer of replies through pc itself.
func newReplyWriter(pc *net.UDPConn) dgramWriter {
	rc, err := pc.SyscallConn()
	if err != nil {
		return newXnetConn(pc)
	}
	w := &connWriter{rc: rc}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		w.family, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil || serr != nil {
		return newXnetConn(pc)
	}
	w.scratch.New = func() any { return new(sendScratch) }
	return w
}

func (w *connWriter) writeBatch(ms []dgram) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	sc := w.scratch.Get().(*sendScratch)
	defer w.scratch.Put(sc)
	ms, err := sc.fill(w.family, ms)
	if err != nil {
		return 0, err
	}
	defer sc.release(len(ms))
	var n uintptr
	var errno syscall.Errno
	if err := w.rc.Write(func(fd uintptr) bool {
		n, _, errno = unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&sc.hdrs[0])), uintptr(len(ms)), unix.MSG_DONTWAIT, 0, 0)
		return errno != unix.EAGAIN
	}); err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, os.NewSyscallError("sendmmsg", errno)
	}
	return int(n), nil
}

// putAddr writes to as a sockaddr of family into raw and returns its
// length.
func putAddr(family int, raw *unix.RawSockaddrInet6, to netip.AddrPort) (uint32, error) {
	a := to.Addr()
	if family == unix.AF_INET {
		if !a.Unmap().Is4() {
			return 0, fmt.Errorf("transport: reply to %v from an IPv4 socket", to)
		}
		r4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		*r4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Unmap().As4()}
		putPort(&r4.Port, to.Port())
		return unix.SizeofSockaddrInet4, nil
	}
	if !a.IsValid() {
		return 0, fmt.Errorf("transport: reply to %v: no IP address", to)
	}
	*raw = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
	putPort(&raw.Port, to.Port())
	if z := a.Zone(); z != "" {
		raw.Scope_id = zoneIndex(z)
	}
	return unix.SizeofSockaddrInet6, nil
}

// putPort stores port in network byte order, as sockaddr wants it.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// getPort reads a port stored in network byte order.
func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// zoneName names an IPv6 zone by its interface's number: the zone of a
// link-local client. Looking up the interface's name would cost a netlink
// round trip per datagram; nothing that reads a peer's address (the ACL,
// rate limits) looks at its zone.
func zoneName(index uint32) string {
	return strconv.FormatUint(uint64(index), 10)
}

// zoneIndex is the interface index of an IPv6 zone, by number (as
// zoneName gives it) or by name; 0 if there is none such.
func zoneIndex(zone string) uint32 {
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// Close closes the socket, once: a second call would close whatever file
// took its number since.
func (s *sendSocket) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if cerr := unix.Close(s.fd); cerr != nil {
			err = os.NewSyscallError("close", cerr)
		}
	})
	return err
}
