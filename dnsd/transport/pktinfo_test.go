package transport_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/dnsd/transport"
)

// everyWay answers "quick" on the reader, "batch" in a wait call on
// several, "fin" in a call of its own after one on several left it, and
// anything else in a call of its own: every way a UDP reply leaves.
type everyWay struct {
	*inlineHandler
	b *batchHandler
}

func (e everyWay) Serve(ctx context.Context, ms []transport.Msg, wait bool) {
	if !wait {
		e.inlineHandler.Serve(ctx, ms, false)
		return
	}
	e.b.Serve(ctx, ms, true)
}

var _ transport.Handler = everyWay{}

// loopback6 says whether ::1 can be used here.
func loopback6() bool {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// On a wildcard listener every reply leaves from the address its query
// went to, whichever way it was answered: a client that asks 127.0.0.2
// on a connected socket (its own address is 127.0.0.1, the one the
// routes pick for a reply to it) gets its answer, and an unconnected one
// sees it come from 127.0.0.2. On 0.0.0.0 (which Go binds as a dual-stack
// socket where the host has IPv6) and on [::] with IPv4 and IPv6 clients;
// one socket and several sharing the port. TestWildcardReadersAndWriters
// covers an IPv4-only socket.
func TestUDPWildcardRepliesFromAddressAsked(t *testing.T) {
	cases := []struct {
		listen  string
		sockets int
		ask     []string
	}{
		{"0.0.0.0:0", 1, []string{"127.0.0.1", "127.0.0.2"}},
		{"0.0.0.0:0", 3, []string{"127.0.0.2", "127.0.0.3"}},
		{"[::]:0", 2, []string{"127.0.0.2", "::1"}},
	}
	v6 := loopback6()
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s×%d", tc.listen, tc.sockets), func(t *testing.T) {
			if tc.listen == "[::]:0" && !v6 {
				t.Skip("no IPv6 loopback here")
			}
			h := newHandler()
			ih := &inlineHandler{handler: h}
			srv := transport.New(transport.Config{
				Handler: everyWay{inlineHandler: ih, b: &batchHandler{handler: h}}, UDPSockets: tc.sockets,
				Registerer: prometheus.NewRegistry(),
			})
			if err := srv.Listen([]string{tc.listen}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), hangBound)
				defer cancel()
				if err := srv.Shutdown(ctx); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			})
			port := uint16(srv.Addrs()[0].(*net.UDPAddr).Port)
			id := uint16(0)
			for _, ask := range tc.ask {
				to := netip.AddrPortFrom(netip.MustParseAddr(ask), port)
				for _, label := range []string{"quick", "batch", "fin", "plain"} {
					id++
					askConnected(t, to, label, id)
					id++
					askUnconnected(t, to, label, id)
				}
			}
			if n := ih.inline.Load(); n == 0 {
				t.Error("no query answered inline")
			}
		})
	}
}

// askConnected asks to for label on a connected socket, which takes
// datagrams from to alone, and fails the test unless the reply comes.
func askConnected(t *testing.T, to netip.AddrPort, label string, id uint16) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(query(t, label, id)); err != nil {
		t.Fatal(err)
	}
	b := readDatagram(c, hangBound)
	if b == nil {
		t.Fatalf("%s asked on %v from %v: no reply on the connected socket (from another address?)", label, to, c.LocalAddr())
	}
	if got := replyID(t, b); got != id {
		t.Fatalf("%s asked on %v: reply ID %d, want %d", label, to, got, id)
	}
}

// askUnconnected asks to for label on an unconnected socket and fails the
// test unless the reply comes from to.
func askUnconnected(t *testing.T, to netip.AddrPort, label string, id uint16) {
	t.Helper()
	network := "udp4"
	if to.Addr().Is6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteToUDPAddrPort(query(t, label, id), to); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(hangBound))
	buf := make([]byte, 512)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("%s asked on %v: %v", label, to, err)
	}
	if from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port()); from != to {
		t.Errorf("%s asked on %v: reply from %v", label, to, from)
	}
	if got := replyID(t, buf[:n]); got != id {
		t.Fatalf("%s asked on %v: reply ID %d, want %d", label, to, got, id)
	}
}
