package transport_test

import (
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardns/shardns/dnsd/transport"
)

// benchListens are the listen addresses the UDP benchmarks compare: a
// specific address, 0.0.0.0 and [::] (as dnsd's default -listen, ":5353",
// binds). Go binds both wildcards as one dual-stack socket where the host
// has IPv6. Clients ask 127.0.0.1.
var benchListens = []struct{ name, listen string }{
	{"specific", "127.0.0.1:0"},
	{"wildcard", "0.0.0.0:0"},
	{"dualstack", "[::]:0"},
}

// BenchmarkUDPInline is a query answered on the reading goroutine
// (the Handler's call with wait false) over real UDP on loopback, with parallel clients each on
// a connected socket of its own: the transport's fast path.
func BenchmarkUDPInline(b *testing.B) {
	for _, l := range benchListens {
		b.Run(l.name, func(b *testing.B) {
			h := &inlineHandler{handler: newHandler()}
			addr := startInlineOn(b, h, transport.Config{}, l.listen)
			benchUDP(b, addr, "quick")
		})
	}
}

// BenchmarkUDPWorker is BenchmarkUDPInline with every query answered by
// a wait call on an answering worker, its reply sent by the socket's
// writer.
func BenchmarkUDPWorker(b *testing.B) {
	for _, l := range benchListens {
		b.Run(l.name, func(b *testing.B) {
			e := startOn(b, newHandler(), transport.Config{}, l.listen)
			benchUDP(b, e.udp, "echo")
		})
	}
}

// benchUDP asks the server at addr's port on 127.0.0.1 for label, from
// parallel clients, one query in flight each.
func benchUDP(b *testing.B, addr, label string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		b.Fatal(err)
	}
	to := net.JoinHostPort("127.0.0.1", port)
	var ids atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("udp", to)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		q := query(b, label, 0)
		buf := make([]byte, 512)
		for pb.Next() {
			id := uint16(ids.Add(1))
			q[0], q[1] = byte(id>>8), byte(id)
			_ = c.SetDeadline(time.Now().Add(hangBound))
			if _, err := c.Write(q); err != nil {
				b.Error(err)
				return
			}
			n, err := c.Read(buf)
			if err != nil {
				b.Error(err)
				return
			}
			if n < 12 || buf[0] != q[0] || buf[1] != q[1] {
				b.Errorf("reply %d bytes, ID %s; want ID %d", n, strconv.Itoa(int(buf[0])<<8|int(buf[1])), id)
				return
			}
		}
	})
}
