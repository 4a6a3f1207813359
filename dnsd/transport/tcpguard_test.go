package transport_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/shardns/shardns/dnsd/acl"
	"github.com/shardns/shardns/dnsd/transport"
)

// guardIdle is the idle timeout of the tests below: longer than any of
// them, so that a connection closed within hangBound was refused, not
// idle.
const guardIdle = time.Hour

// askTCP sends a query on c and fails the test unless its reply comes.
func askTCP(t *testing.T, c *net.TCPConn, id uint16) {
	t.Helper()
	send(t, c, framed(query(t, "echo", id)))
	if got := readReply(t, c); got != id {
		t.Fatalf("reply ID %d, want %d", got, id)
	}
}

// expectRefused fails the test unless a connection from from to addr is
// closed by the server without a reply: the reset may already meet the
// connect, or it comes after.
func expectRefused(t *testing.T, from, addr string) {
	t.Helper()
	d := net.Dialer{Timeout: hangBound, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial: %v, want a connection or a reset", err)
		}
		return
	}
	defer c.Close()
	// The write may already meet the reset; what matters is no reply.
	_ = c.SetWriteDeadline(time.Now().Add(hangBound))
	_, _ = c.Write(framed(query(t, "echo", 7)))
	if b, err := readFrame(c, hangBound); err == nil {
		t.Fatalf("a refused client got a reply: % x", b[:min(len(b), 12)])
	} else if isTimeout(err) {
		t.Fatalf("connection still open after %v", hangBound)
	}
}

// servedWithin opens connections from from to addr until one is served
// a query with ID id, a bounded number of times: a connection that just
// closed frees its slot once the server has noticed.
func servedWithin(t *testing.T, from, addr string, id uint16) bool {
	t.Helper()
	d := net.Dialer{Timeout: hangBound}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	for range 200 {
		c, err := d.Dial("tcp", addr)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(hangBound))
			_, err = c.Write(framed(query(t, "echo", id)))
			var b []byte
			if err == nil {
				b, err = readFrame(c, hangBound)
			}
			c.Close()
			if err == nil {
				if got := replyID(t, b); got != id {
					t.Fatalf("reply ID %d, want %d", got, id)
				}
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// A client outside TCPAllow has its connection closed as soon as it is
// accepted, with no answer to what it sent and nothing handed to the
// handler; a client inside is served.
func TestTCPAllowAtAccept(t *testing.T) {
	allow, err := acl.Parse("127.0.0.2/32")
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler()
	e := start(t, h, transport.Config{TCPAllow: allow, TCPIdleTimeout: guardIdle})

	for range 2 {
		expectRefused(t, "127.0.0.1", e.tcp)
	}
	if n := e.metricWith(t, "shardns_dns_tcp_rejected_total", "reason", "acl"); n != 2 {
		t.Errorf("tcp_rejected_total{reason=acl} %v, want 2", n)
	}

	askTCP(t, dialTCPFrom(t, "127.0.0.2", e.tcp), 8)
	if n := h.calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1 (the allowed client's query)", n)
	}
	if g := e.metric(t, "shardns_dns_tcp_connections"); g != 1 {
		t.Errorf("tcp_connections %v, want 1", g)
	}
}

// MaxTCPPerClient: a client's connection over its cap is closed at once
// and counted, while another client is still served; when one of the
// client's connections ends, it may open another.
func TestTCPPerClientCap(t *testing.T) {
	const perClient = 3
	h := newHandler()
	e := start(t, h, transport.Config{MaxTCPPerClient: perClient, TCPIdleTimeout: guardIdle})
	var conns [perClient]*net.TCPConn
	for i := range conns {
		conns[i] = dialTCPFrom(t, "127.0.0.1", e.tcp)
		askTCP(t, conns[i], uint16(i)) // served, so counted open
	}

	expectRefused(t, "127.0.0.1", e.tcp)
	if n := e.metricWith(t, "shardns_dns_tcp_rejected_total", "reason", "per_client"); n != 1 {
		t.Errorf("tcp_rejected_total{reason=per_client} %v, want 1", n)
	}
	if n := e.metricWith(t, "shardns_dns_tcp_rejected_total", "reason", "max_conns"); n != 0 {
		t.Errorf("tcp_rejected_total{reason=max_conns} %v, want 0", n)
	}

	// Another client is not held back by the first one's cap.
	askTCP(t, dialTCPFrom(t, "127.0.0.3", e.tcp), 100)
	for i, c := range conns { // and the first client's stay open
		askTCP(t, c, uint16(200+i))
	}

	conns[0].Close()
	// The server notices the close in its own time: retry, boundedly.
	if !servedWithin(t, "127.0.0.1", e.tcp, 300) {
		t.Fatal("no new connection from the client served after one of its own closed")
	}
}

// The per-client cap is never above MaxTCPConns: with both at their
// defaults a client may open DefaultMaxTCPPerClient connections, and with
// fewer slots than that the table's cap is the one met.
func TestTCPPerClientCapDefault(t *testing.T) {
	e := start(t, newHandler(), transport.Config{TCPIdleTimeout: guardIdle})
	for i := range transport.DefaultMaxTCPPerClient {
		askTCP(t, dialTCP(t, e.tcp), uint16(i))
	}
	expectRefused(t, "127.0.0.1", e.tcp)
	if n := e.metricWith(t, "shardns_dns_tcp_rejected_total", "reason", "per_client"); n != 1 {
		t.Errorf("tcp_rejected_total{reason=per_client} %v, want 1", n)
	}

	const slots = 2
	e = start(t, newHandler(), transport.Config{MaxTCPConns: slots, TCPIdleTimeout: guardIdle})
	for i := range slots {
		askTCP(t, dialTCP(t, e.tcp), uint16(i))
	}
	expectRefused(t, "127.0.0.1", e.tcp)
	for reason, want := range map[string]float64{"max_conns": 1, "per_client": 0} {
		if n := e.metricWith(t, "shardns_dns_tcp_rejected_total", "reason", reason); n != want {
			t.Errorf("tcp_rejected_total{reason=%s} %v, want %v", reason, n, want)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
