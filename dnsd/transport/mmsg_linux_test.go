package transport

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A peer read from a sockaddr is written back as the same sockaddr: the
// reply goes where the query came from, zone included, with no lookup of
// the interface per datagram.
func TestSockaddrRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		family int
		peer   string
	}{
		{unix.AF_INET, "192.0.2.7:53000"},
		{unix.AF_INET6, "[2001:db8::7]:1"},
		{unix.AF_INET6, "[::ffff:192.0.2.7]:65535"}, // an IPv4 client of a dual-stack socket
		{unix.AF_INET6, "[fe80::7%3]:5353"},         // link-local, on interface 3
	} {
		peer := netip.MustParseAddrPort(tc.peer)
		var raw unix.RawSockaddrInet6
		if _, err := putAddr(tc.family, &raw, peer); err != nil {
			t.Fatalf("%v: %v", peer, err)
		}
		if got := peerOf(&raw); got != peer {
			t.Errorf("%v written and read back as %v", peer, got)
		}
	}
	var raw unix.RawSockaddrInet6
	if _, err := putAddr(unix.AF_INET, &raw, netip.MustParseAddrPort("[2001:db8::7]:53")); err == nil {
		t.Error("an IPv6 peer put into an IPv4 sockaddr")
	}
}

// A source address written as a control message reads back as the same
// destination (the kernel sends IPV6_PKTINFO back as it takes it; for
// IPv4 the field read is ipi_spec_dst, the one putSrc sets); addresses a
// reply cannot leave from read as none.
func TestPktinfoRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		family int
		src    string
		want   string // "": none
	}{
		{unix.AF_INET, "192.0.2.7", "192.0.2.7"},
		{unix.AF_INET, "127.0.0.2", "127.0.0.2"},
		{unix.AF_INET6, "2001:db8::7", "2001:db8::7"},
		{unix.AF_INET6, "::ffff:127.0.0.2", "::ffff:127.0.0.2"}, // IPv4 on a dual-stack socket
		{unix.AF_INET, "255.255.255.255", ""},
		{unix.AF_INET, "224.0.0.251", ""},
		{unix.AF_INET6, "ff02::fb", ""},
		{unix.AF_INET6, "::", ""},
	} {
		var b ctlBuf
		n := putSrc(&b, tc.family, netip.MustParseAddr(tc.src))
		if n == 0 {
			t.Fatalf("putSrc(%d, %s) wrote nothing", tc.family, tc.src)
		}
		got := dstOf(b.bytes()[:n])
		if tc.want == "" {
			if got.IsValid() {
				t.Errorf("%s read back as %v, want none", tc.src, got)
			}
			continue
		}
		if got != netip.MustParseAddr(tc.want) {
			t.Errorf("%s read back as %v, want %s", tc.src, got, tc.want)
		}
	}
	var b ctlBuf
	if n := putSrc(&b, unix.AF_INET, netip.MustParseAddr("2001:db8::7")); n != 0 {
		t.Error("an IPv6 source put into an IPv4 control message")
	}
	for _, junk := range [][]byte{nil, {1, 2, 3}, make([]byte, 200)} {
		if got := dstOf(junk); got.IsValid() {
			t.Errorf("dstOf(% x) = %v, want none", junk, got)
		}
	}
}

// A wildcard socket's reader reports each datagram's destination, and
// both reply writers (a send socket beside it, and the socket itself when
// none could be bound) send from it: a client connected to 127.0.0.2
// gets the reply. An IPv4 socket (IP_PKTINFO: what "udp" binds where
// there is no IPv6) and a dual-stack one (IPV6_PKTINFO with IPv4-mapped
// addresses: what "udp" binds for 0.0.0.0 and :: where there is).
func TestWildcardReadersAndWriters(t *testing.T) {
	for _, network := range []string{"udp4", "udp"} {
		for _, writer := range []string{"send socket", "reading socket"} {
			t.Run(network+"/"+writer, func(t *testing.T) { wildcardRoundTrip(t, network, writer) })
		}
	}
}

func wildcardRoundTrip(t *testing.T, network, writer string) {
	t.Helper()
	lc := net.ListenConfig{Control: reusePort}
	p, err := lc.ListenPacket(context.Background(), network, "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	pc := p.(*net.UDPConn)
	defer pc.Close()
	pcs := []*net.UDPConn{pc}
	var family int
	rc, _ := pc.SyscallConn()
	_ = rc.Control(func(fd uintptr) { family, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN) })
	if want := map[string]int{"udp4": unix.AF_INET, "udp": unix.AF_INET6}[network]; family != want {
		t.Skipf("%s on 0.0.0.0 bound family %d here, not %d", network, family, want)
	}
	if err := recvDstInfo(pcs); err != nil {
		t.Fatal(err)
	}
	var w dgramWriter = newReplyWriter(pc)
	if writer == "send socket" {
		ws, err := openSendSockets(pcs)
		if err != nil {
			t.Fatal(err)
		}
		defer ws[0].Close()
		w = ws[0]
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	rd := newDgramReader(pc, true)
	ms := []dgram{{b: make([]byte, 512)}}
	_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := rd.readBatch(ms); err != nil || n != 1 {
		t.Fatalf("read %d datagrams: %v", n, err)
	}
	if want := netip.MustParseAddr("127.0.0.2"); ms[0].local.Unmap() != want {
		t.Fatalf("datagram came to %v, want %v", ms[0].local, want)
	}
	reply := dgram{b: []byte("reply"), peer: ms[0].peer, local: ms[0].local}
	if n, err := w.writeBatch([]dgram{reply}); err != nil || n != 1 {
		t.Fatalf("wrote %d datagrams: %v", n, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "reply" {
		t.Fatalf("connected client read %q, %v", buf[:n], err)
	}
}

// BenchmarkPktinfo is what a wildcard socket adds per datagram in user
// space: reading the destination from the control message that came
// with a query, and writing it as the reply's source.
func BenchmarkPktinfo(b *testing.B) {
	for _, tc := range []struct {
		name   string
		family int
		addr   string
	}{
		{"ipv4", unix.AF_INET, "127.0.0.2"},
		{"dualstack", unix.AF_INET6, "::ffff:127.0.0.2"},
		{"ipv6", unix.AF_INET6, "2001:db8::53"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var in, out ctlBuf
			n := putSrc(&in, tc.family, netip.MustParseAddr(tc.addr))
			b.ReportAllocs()
			for b.Loop() {
				a := dstOf(in.bytes()[:n])
				if putSrc(&out, tc.family, a) == 0 {
					b.Fatal("nothing written")
				}
			}
		})
	}
}
