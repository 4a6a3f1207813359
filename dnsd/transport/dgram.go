package transport

import (
	"io"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpBatch is the most datagrams one read or write call moves. On Linux a
// call is one recvmmsg or sendmmsg, so under load one system call carries
// up to udpBatch queries or replies; elsewhere x/net falls back to one
// datagram per call.
const udpBatch = 64

// dgram is one datagram: read into b, n bytes long, from peer, to local;
// or b sent to peer, from local. local is set only on wildcard sockets
// (see recvDstInfo); unset, a reply leaves from the socket's address.
type dgram struct {
	b     []byte
	n     int
	peer  netip.AddrPort
	local netip.Addr
}

// dgramReader reads as many datagrams as are waiting, up to len(ms), into
// ms[i].b (at most len(ms[i].b) bytes each), and returns how many it read.
// It blocks until one comes.
type dgramReader interface {
	readBatch(ms []dgram) (int, error)
}

// dgramWriter sends as many of ms as one call can and returns how many it
// sent; an error is about ms[n]. It is safe for concurrent use.
type dgramWriter interface {
	writeBatch(ms []dgram) (int, error)
}

// replySocket is a socket that only sends replies (sendSocket on Linux).
type replySocket interface {
	dgramWriter
	io.Closer
}

// batchConn reads and writes several datagrams per call.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// xnetConn reads and writes a socket through x/net's batch calls: the
// portable way, where the Linux calls of mmsg_linux.go are not used. It
// costs a net.UDPAddr per datagram each way.
type xnetConn struct {
	bc      batchConn
	in      []ipv4.Message // the one reader's
	scratch sync.Pool      // *[]ipv4.Message for writers
}

func newXnetConn(pc *net.UDPConn) *xnetConn {
	c := &xnetConn{bc: ipv4.NewPacketConn(pc), in: newMessages()}
	if a, ok := pc.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		c.bc = ipv6.NewPacketConn(pc)
	}
	c.scratch.New = func() any { ms := newMessages(); return &ms }
	return c
}

func newMessages() []ipv4.Message {
	ms := make([]ipv4.Message, udpBatch)
	for i := range ms {
		ms[i].Buffers = make([][]byte, 1)
	}
	return ms
}

func (c *xnetConn) readBatch(ms []dgram) (int, error) {
	in := c.in[:min(len(ms), len(c.in))]
	for i := range in {
		in[i].Buffers[0] = ms[i].b
	}
	n, err := c.bc.ReadBatch(in, 0)
	for i := range n {
		ms[i].n, ms[i].peer = in[i].N, netip.AddrPort{}
		if ua, ok := in[i].Addr.(*net.UDPAddr); ok {
			ms[i].peer = ua.AddrPort()
		}
	}
	for i := range in {
		in[i].Buffers[0], in[i].Addr = nil, nil
	}
	return n, err
}

func (c *xnetConn) writeBatch(ms []dgram) (int, error) {
	p := c.scratch.Get().(*[]ipv4.Message)
	defer c.scratch.Put(p)
	out := (*p)[:min(len(ms), len(*p))]
	for i := range out {
		out[i].Buffers[0], out[i].Addr = ms[i].b, net.UDPAddrFromAddrPort(ms[i].peer)
	}
	n, err := c.bc.WriteBatch(out, 0)
	for i := range out {
		out[i].Buffers[0], out[i].Addr = nil, nil
	}
	return n, err
}
