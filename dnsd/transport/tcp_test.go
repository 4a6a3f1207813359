package transport_test

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/shardns/shardns/dnsd/transport"
)

// RFC 7766 §6.2.1.1: queries pipelined on one connection are answered as
// they finish, not in the order they came.
func TestTCPPipelinedOutOfOrder(t *testing.T) {
	h := newHandler()
	releaseSlow := h.hold("slow")
	e := start(t, h, transport.Config{})
	c := dialTCP(t, e.tcp)
	// Both queries leave before any reply is read.
	send(t, c, framed(query(t, "slow", 1), query(t, "fast", 2)))
	if id := readReply(t, c); id != 2 {
		t.Fatalf("first reply has ID %d, want 2 (the fast query; the slow one is held)", id)
	}
	releaseSlow()
	if id := readReply(t, c); id != 1 {
		t.Fatalf("second reply has ID %d, want 1", id)
	}
}

// Ten held queries released in reverse order are answered in that order.
func TestTCPRepliesInCompletionOrder(t *testing.T) {
	h := newHandler()
	const n = 10
	var release [n]func()
	var all []byte
	for i := range n {
		label := "q" + strconv.Itoa(i)
		release[i] = h.hold(label)
		all = append(all, framed(query(t, label, uint16(100+i)))...)
	}
	e := start(t, h, transport.Config{})
	c := dialTCP(t, e.tcp)
	send(t, c, all)
	waitFor(t, "all queries to reach the handler", func() bool { return h.running.Load() == n })
	for i := n - 1; i >= 0; i-- {
		release[i]()
		if id := readReply(t, c); id != uint16(100+i) {
			t.Fatalf("released query %d, got the reply to %d", 100+i, id)
		}
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond

	t.Run("nothing sent", func(t *testing.T) {
		e := start(t, newHandler(), transport.Config{TCPIdleTimeout: idle})
		expectClosed(t, dialTCP(t, e.tcp))
		waitFor(t, "the connection gauge to fall to 0", func() bool { return e.metric(t, "shardns_dns_tcp_connections") == 0 })
	})

	// A query in flight for five idle timeouts keeps its connection open:
	// the server goes on reading (a second query is answered meanwhile)
	// and writes the reply when it comes; then, idle, it closes.
	t.Run("query in flight", func(t *testing.T) {
		h := newHandler()
		release := h.hold("long")
		e := start(t, h, transport.Config{TCPIdleTimeout: idle})
		c := dialTCP(t, e.tcp)
		send(t, c, framed(query(t, "long", 1)))
		waitFor(t, "the held query to reach the handler", func() bool { return h.running.Load() == 1 })
		time.Sleep(5 * idle)
		send(t, c, framed(query(t, "after", 2)))
		if id := readReply(t, c); id != 2 {
			t.Fatalf("reply ID %d, want 2", id)
		}
		release()
		if id := readReply(t, c); id != 1 {
			t.Fatalf("reply ID %d, want 1", id)
		}
		expectClosed(t, c)
	})
}

// MaxTCPConns: the connection over the cap is closed at once and counted;
// when one of the open ones ends, a new one is served.
func TestTCPConnectionCap(t *testing.T) {
	h := newHandler()
	const maxConns = 3
	var release [maxConns]func()
	for i := range maxConns {
		release[i] = h.hold("hold" + strconv.Itoa(i))
	}
	// A query held on each connection keeps it from being idle, whatever
	// the idle timeout of a busy server.
	e := start(t, h, transport.Config{MaxTCPConns: maxConns})
	var conns [maxConns]*net.TCPConn
	for i := range maxConns {
		conns[i] = dialTCP(t, e.tcp)
		send(t, conns[i], framed(query(t, "hold"+strconv.Itoa(i), uint16(i))))
		waitFor(t, "connection "+strconv.Itoa(i)+"'s query", func() bool { return h.running.Load() == int64(i+1) })
	}
	if g := e.metric(t, "shardns_dns_tcp_connections"); g != maxConns {
		t.Errorf("tcp_connections %v, want %d", g, maxConns)
	}

	expectRefused(t, "127.0.0.1", e.tcp)
	if n := e.metricWith(t, "shardns_dns_tcp_rejected_total", "reason", "max_conns"); n != 1 {
		t.Errorf("tcp_rejected_total %v, want 1", n)
	}
	if n := h.calls.Load(); n != maxConns {
		t.Errorf("handler called %d times, want %d", n, maxConns)
	}

	release[0]()
	if id := readReply(t, conns[0]); id != 0 {
		t.Fatalf("reply ID %d, want 0", id)
	}
	conns[0].Close()
	// The server notices the close in its own time: retry, boundedly.
	if !servedWithin(t, "", e.tcp, 500) {
		t.Fatal("no new connection served after one of the open ones closed")
	}
	if n := e.metricWith(t, "shardns_dns_tcp_rejected_total", "reason", "max_conns"); n < 1 {
		t.Errorf("tcp_rejected_total %v, want at least 1", n)
	}
}

// MaxTCPInFlight bounds the handler calls of one connection; the rest wait
// unread and are answered once the first finish. Other connections are
// not held up.
func TestTCPInFlightCap(t *testing.T) {
	h := newHandler()
	release := h.hold("block")
	const inflight, n = 2, 10
	e := start(t, h, transport.Config{MaxTCPInFlight: inflight})
	c := dialTCP(t, e.tcp)
	var all []byte
	for i := range n {
		all = append(all, framed(query(t, "block", uint16(i)))...)
	}
	send(t, c, all)
	waitFor(t, "the first queries to reach the handler", func() bool { return h.running.Load() == inflight })
	// Give a server that ignored the cap time to start more calls.
	time.Sleep(300 * time.Millisecond)
	if got := h.calls.Load(); got != inflight {
		t.Errorf("%d handler calls with %d allowed in flight", got, inflight)
	}

	other := dialTCP(t, e.tcp)
	send(t, other, framed(query(t, "other", 999)))
	if id := readReply(t, other); id != 999 {
		t.Fatalf("other connection: reply ID %d, want 999", id)
	}

	release()
	seen := map[uint16]bool{}
	for range n {
		seen[readReply(t, c)] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct replies, want %d", len(seen), n)
	}
	peer := netip.MustParseAddrPort(c.LocalAddr().String())
	if m := h.maxFor(peer); m != inflight {
		t.Errorf("at most %d calls at once for the connection, want %d", m, inflight)
	}
}

// A client sending a message slowly is cut off after TCPReadTimeout, long
// before the idle timeout.
func TestTCPSlowClient(t *testing.T) {
	cfg := transport.Config{TCPReadTimeout: 300 * time.Millisecond, TCPIdleTimeout: time.Minute}

	t.Run("body trickled", func(t *testing.T) {
		h := newHandler()
		e := start(t, h, cfg)
		c := dialTCP(t, e.tcp)
		q := query(t, "trickle", 1)
		send(t, c, framed(q)[:2])
		cut := false
		for i := 0; i < len(q) && !cut; i++ {
			_ = c.SetWriteDeadline(time.Now().Add(hangBound))
			if _, err := c.Write(q[i : i+1]); err != nil {
				cut = true
				break
			}
			// Wait 500ms for the close, instead of sleeping.
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				var ne net.Error
				cut = !(errors.As(err, &ne) && ne.Timeout())
			} else {
				t.Fatal("a reply to a message not yet sent whole")
			}
		}
		if !cut {
			t.Fatalf("a %d-byte message sent a byte per 500ms was read whole; read timeout 300ms", len(q))
		}
		if n := h.calls.Load(); n != 0 {
			t.Errorf("handler called %d times for a message never sent whole", n)
		}
	})

	t.Run("length trickled", func(t *testing.T) {
		e := start(t, newHandler(), cfg)
		c := dialTCP(t, e.tcp)
		send(t, c, []byte{0})
		expectClosed(t, c)
	})
}

// A client that pipelines queries and never reads the replies loses its
// connection after WriteTimeout; it holds only a bounded number of
// queries meanwhile, and the server keeps serving others.
func TestTCPClientNeverReads(t *testing.T) {
	h := newHandler()
	h.bigSize = 60000
	e := start(t, h, transport.Config{WriteTimeout: 300 * time.Millisecond})
	c := dialTCP(t, e.tcp)
	if err := c.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	q := framed(query(t, "big", 7))
	wrote := make(chan int, 1)
	go func() {
		i := 0
		for ; i < n; i++ {
			_ = c.SetWriteDeadline(time.Now().Add(hangBound))
			if _, err := c.Write(q); err != nil {
				break
			}
		}
		wrote <- i
	}()

	checkServes(t, e, 1)
	sent := <-wrote
	waitFor(t, "the server to close the connection of a client that does not read", func() bool {
		return e.metric(t, "shardns_dns_tcp_connections") == 0
	})
	if calls := h.calls.Load(); calls >= n {
		t.Errorf("handler called %d times for a client that read nothing; the server should stop reading", calls)
	}
	t.Logf("client wrote %d queries, the handler saw %d", sent, h.calls.Load())
	checkServes(t, e, 2)
}

// checkServes fails the test unless the server answers a query over a new
// TCP connection and over UDP.
func checkServes(t *testing.T, e *env, id uint16) {
	t.Helper()
	c := dialTCP(t, e.tcp)
	send(t, c, framed(query(t, "check", id)))
	if got := readReply(t, c); got != id {
		t.Fatalf("TCP reply ID %d, want %d", got, id)
	}
	c.Close()
	u := dialUDP(t, e.udp)
	if _, err := u.Write(query(t, "check", id)); err != nil {
		t.Fatal(err)
	}
	b := readDatagram(u, hangBound)
	if b == nil {
		t.Fatal("no UDP reply")
	}
	if got := replyID(t, b); got != id {
		t.Fatalf("UDP reply ID %d, want %d", got, id)
	}
	u.Close()
}

// A length prefix below a DNS header's 12 bytes ends the connection (RFC
// 7766 §8: the stream cannot be resynchronised), after the replies to the
// queries before it are written. 12 is accepted.
func TestTCPBadLength(t *testing.T) {
	h := newHandler()
	e := start(t, h, transport.Config{})
	for i, n := range []int{0, 1, 11} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			c := dialTCP(t, e.tcp)
			bad := framed(make([]byte, n))
			send(t, c, append(framed(query(t, "ok", uint16(i))), bad...))
			if id := readReply(t, c); id != uint16(i) {
				t.Fatalf("reply ID %d, want %d", id, i)
			}
			expectClosed(t, c)
			if got := e.metric(t, "shardns_dns_tcp_bad_length_total"); got != float64(i+1) {
				t.Errorf("tcp_bad_length_total %v, want %d", got, i+1)
			}
		})
	}
	t.Run("12", func(t *testing.T) {
		c := dialTCP(t, e.tcp)
		hdr := make([]byte, 12)
		hdr[0], hdr[1] = 0x12, 0x34
		send(t, c, framed(hdr))
		if id := readReply(t, c); id != 0x1234 {
			t.Fatalf("reply ID %#x, want 0x1234", id)
		}
	})
}
