package transport

import (
	"net"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A socket bound to a wildcard address (0.0.0.0, ::) takes datagrams sent
// to any of the host's addresses, and the kernel picks a reply's source
// address by its routes: not always the one the query went to, and a
// client that checks (a connected socket, most stub resolvers) drops such
// a reply. So a wildcard reading socket asks for each datagram's
// destination (IP_PKTINFO, IPV6_RECVPKTINFO) and its reply names it as
// the source (an IP_PKTINFO or IPV6_PKTINFO control message). A socket
// bound to one address needs neither: its replies leave from it.

// dstInfoWorks says whether wildcard sockets learn each datagram's
// destination and send its reply from it.
const dstInfoWorks = true

// ctlWords is the room, in 8-byte words (aligned as a cmsghdr must be),
// for one datagram's control messages: one in6_pktinfo (the larger) and
// another the kernel might add.
const ctlWords = 2 * (unix.SizeofCmsghdr + unix.SizeofInet6Pktinfo + 8) / 8

// ctlBuf is one datagram's control messages.
type ctlBuf [ctlWords]uint64

func (b *ctlBuf) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(b)), ctlWords*8)
}

// recvDstInfo asks each of pcs, the reading sockets of one wildcard
// address, for the destination address of every datagram it reads.
func recvDstInfo(pcs []*net.UDPConn) error {
	for _, pc := range pcs {
		rc, err := pc.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			var family int
			if family, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); serr != nil {
				return
			}
			if family == unix.AF_INET6 {
				// IPv4 datagrams on a dual-stack socket come with their
				// destination too, as an IPv4-mapped address.
				serr = os.NewSyscallError("setsockopt IPV6_RECVPKTINFO", unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1))
			} else {
				serr = os.NewSyscallError("setsockopt IP_PKTINFO", unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1))
			}
		}); err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
	}
	return nil
}

// dstOf is the address a datagram came to, from the control messages b
// that came with it; the zero Addr if they do not say, or name an address
// a reply cannot leave from (multicast).
func dstOf(b []byte) netip.Addr {
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(b) {
			break
		}
		data := b[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// ipi_spec_dst: the local address the datagram was for; a
			// broadcast's is the receiving interface's own.
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			return unicast(netip.AddrFrom4(pi.Spec_dst))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			return unicast(netip.AddrFrom16(pi.Addr))
		}
		b = b[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(b)):]
	}
	return netip.Addr{}
}

// unicast is a, or the zero Addr if a cannot be a reply's source.
func unicast(a netip.Addr) netip.Addr {
	if u := a.Unmap(); u.IsMulticast() || u.IsUnspecified() || u == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.Addr{}
	}
	return a
}

// putSrc writes into b the control message that makes a datagram leave
// from src, for a socket of family, and returns its length; 0 if src does
// not suit the family.
func putSrc(b *ctlBuf, family int, src netip.Addr) int {
	buf := b.bytes()
	h := (*unix.Cmsghdr)(unsafe.Pointer(&buf[0]))
	data := unsafe.Pointer(&buf[unix.CmsgLen(0)])
	if family == unix.AF_INET {
		if !src.Unmap().Is4() {
			return 0
		}
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		// No interface: the routes pick it, as for any reply.
		*(*unix.Inet4Pktinfo)(data) = unix.Inet4Pktinfo{Spec_dst: src.Unmap().As4()}
		return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	*(*unix.Inet6Pktinfo)(data) = unix.Inet6Pktinfo{Addr: src.As16()}
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}
