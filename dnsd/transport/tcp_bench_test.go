package transport_test

import (
	"net"
	"testing"
	"time"

	"github.com/shardns/shardns/dnsd/transport"
)

// BenchmarkTCPQuery is one query at a time on one TCP connection, asked
// and answered over loopback: the TCP listener's round trip.
func BenchmarkTCPQuery(b *testing.B) {
	e := start(b, newHandler(), transport.Config{})
	c, err := net.DialTimeout("tcp", e.tcp, hangBound)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchStream(b, c)
}

// benchStream asks one query at a time on c, framed as over TCP, and
// reads each reply.
func benchStream(b *testing.B, c net.Conn) {
	req := framed(query(b, "quick", 1))
	b.ReportAllocs()
	for b.Loop() {
		_ = c.SetWriteDeadline(time.Now().Add(hangBound))
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := readFrame(c, hangBound); err != nil {
			b.Fatal(err)
		}
	}
}
