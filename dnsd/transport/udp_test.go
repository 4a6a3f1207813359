package transport_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/dnsd/transport"
)

func TestUDPEcho(t *testing.T) {
	h := newHandler()
	e := start(t, h, transport.Config{})
	u := dialUDP(t, e.udp)
	for id := range uint16(20) {
		if _, err := u.Write(query(t, "echo", id)); err != nil {
			t.Fatal(err)
		}
		b := readDatagram(u, hangBound)
		if b == nil {
			t.Fatalf("query %d: no reply", id)
		}
		if got := replyID(t, b); got != id {
			t.Fatalf("reply ID %d, want %d", got, id)
		}
	}
}

// A query that is not answered inline goes to an answering worker that
// outlives it: queries one after another are answered by the same few
// goroutines, not by a new one each (whose stack would grow anew every
// time), and the workers exit once idle.
func TestUDPWorkersReused(t *testing.T) {
	h := newHandler()
	e := start(t, h, transport.Config{})
	u := dialUDP(t, e.udp)
	const queries = 50
	for id := range uint16(queries) {
		if _, err := u.Write(query(t, "echo", id)); err != nil {
			t.Fatal(err)
		}
		if b := readDatagram(u, hangBound); b == nil {
			t.Fatalf("query %d: no reply", id)
		}
	}
	// A worker is back waiting before the next query is read nearly
	// always; a loaded machine may start another one now and then. A
	// goroutine per query would be 50.
	if n := h.goroutines(); n > queries/5 {
		t.Errorf("%d queries answered by %d goroutines, want at most %d", queries, n, queries/5)
	}
	const worker = "transport.(*udpReader).work("
	if countStacks(worker) == 0 {
		t.Fatal("no answering worker waits after the last reply")
	}
	waitFor(t, "idle workers to exit", func() bool { return countStacks(worker) == 0 })
}

// MaxUDPInFlight: datagrams arriving while the cap is taken are dropped
// and counted; once the call finishes, new queries are answered.
func TestUDPInFlightCap(t *testing.T) {
	h := newHandler()
	release := h.hold("block")
	e := start(t, h, transport.Config{MaxUDPInFlight: 1})
	u := dialUDP(t, e.udp)
	if _, err := u.Write(query(t, "block", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the held query to reach the handler", func() bool { return h.running.Load() == 1 })
	const burst = 20
	for i := range burst {
		if _, err := u.Write(query(t, "fast", uint16(100+i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the burst to be dropped", func() bool { return e.metric(t, "shardns_dns_udp_dropped_total") == burst })
	if b := readDatagram(u, 300*time.Millisecond); b != nil {
		t.Fatalf("a reply (ID %d) while the only slot was held", replyID(t, b))
	}
	if n := h.calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}

	release()
	b := readDatagram(u, hangBound)
	if b == nil {
		t.Fatal("no reply to the held query after release")
	}
	if got := replyID(t, b); got != 1 {
		t.Fatalf("reply ID %d, want 1", got)
	}
	// The slot frees just after the reply leaves: retry as a client would.
	answered := false
	for i := 0; i < 50 && !answered; i++ {
		if _, err := u.Write(query(t, "fast", uint16(200+i))); err != nil {
			t.Fatal(err)
		}
		b := readDatagram(u, 200*time.Millisecond)
		answered = b != nil && replyID(t, b) >= 200
	}
	if !answered {
		t.Fatal("no reply to queries sent after the slot was freed")
	}
}

// batchHandler leaves every message on the reader; of a wait call on
// several it answers those for "batch" at once and leaves the rest, those
// for "fin" marked in their State; a wait call on one answers it. It
// records the largest batch and how many "fin" queries were answered
// after being left, and alone.
type batchHandler struct {
	*handler
	mu       sync.Mutex
	largest  int
	finishes int // "fin" answered in a call of its own after a call on several left it
	alone    int // "fin" read alone: answered in its first wait call
}

func (b *batchHandler) Serve(ctx context.Context, ms []transport.Msg, wait bool) {
	if !wait {
		return
	}
	b.mu.Lock()
	b.largest = max(b.largest, len(ms))
	b.mu.Unlock()
	if len(ms) == 1 {
		m := &ms[0]
		if firstLabel(m.Req) == "fin" {
			b.mu.Lock()
			if m.State == "fin" {
				b.finishes++
			} else {
				b.alone++
			}
			b.mu.Unlock()
		}
		m.Reply, m.Done = b.ServeMessage(ctx, m.Req, m.From, m.Dst), true
		return
	}
	for i := range ms {
		m := &ms[i]
		switch firstLabel(m.Req) {
		case "batch":
			m.Reply, m.Done = b.ServeMessage(ctx, m.Req, m.From, m.Dst), true
		case "fin":
			m.State = "fin"
		}
	}
}

// A read's datagrams reach a wait call together: what it answers at once,
// and what it leaves (each then answered by a call of its own, with the
// State the first call gave it), are all answered, each exactly once.
func TestUDPBatchHandler(t *testing.T) {
	b := &batchHandler{handler: newHandler()}
	srv := transport.New(transport.Config{Handler: b, Registerer: prometheus.NewRegistry()})
	if err := srv.Listen([]string{"127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	u := dialUDP(t, srv.Addrs()[0].String())
	labels := []string{"batch", "fin", "plain"}
	const rounds, burst = 20, 30
	seen := map[uint16]bool{}
	for r := range rounds {
		for i := range burst {
			id := uint16(r*burst + i)
			if _, err := u.Write(query(t, labels[i%3], id)); err != nil {
				t.Fatal(err)
			}
		}
		for range burst {
			reply := readDatagram(u, hangBound)
			if reply == nil {
				t.Fatalf("round %d: %d replies of %d", r, len(seen)-r*burst, burst)
			}
			id := replyID(t, reply)
			if seen[id] {
				t.Fatalf("reply %d twice", id)
			}
			seen[id] = true
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if want := rounds * burst / 3; b.finishes+b.alone != want || b.finishes == 0 {
		t.Errorf("%d \"fin\" queries answered after being left, %d alone; want %d in all, some left", b.finishes, b.alone, want)
	}
	if n := b.calls.Load(); n != rounds*burst {
		t.Errorf("%d answers made, want %d", n, rounds*burst)
	}
	if b.largest < 2 {
		t.Errorf("largest batch %d: bursts of %d were never read together", b.largest, burst)
	}
}

// Every query reaches a socket that reads it, whichever of the sockets
// sharing the port the kernel would have picked (replies leave through
// send-only sockets bound beside them on Linux), and every reply comes
// from the address and port the query went to: IPv4, IPv6, and IPv4
// clients of a dual-stack socket.
func TestUDPRepliesFromServedAddress(t *testing.T) {
	for _, tc := range []struct {
		listen  string
		sockets int
		client  string // the client's network and the server address it asks
		to      func(port int) string
	}{
		{"127.0.0.1:0", 1, "udp4", func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }},
		{"127.0.0.1:0", 3, "udp4", func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }},
		{"[::1]:0", 2, "udp6", func(p int) string { return fmt.Sprintf("[::1]:%d", p) }},
		{"[::]:0", 1, "udp4", func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }},
	} {
		t.Run(fmt.Sprintf("%s×%d/%s", tc.listen, tc.sockets, tc.client), func(t *testing.T) {
			h := newHandler()
			e := startOn(t, h, transport.Config{UDPSockets: tc.sockets}, tc.listen)
			want := netip.MustParseAddrPort(tc.to(e.srv.Addrs()[0].(*net.UDPAddr).Port))
			server := net.UDPAddrFromAddrPort(want)
			const clients, each = 40, 5
			conns := make([]*net.UDPConn, clients)
			asked := map[uint16]bool{}
			for c := range conns {
				conn, err := net.ListenUDP(tc.client, nil) // a port of its own: a flow of its own
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conns[c] = conn
				for i := range each {
					id := uint16((c*each + i) * 7919) // IDs spread over the range
					asked[id] = true
					if _, err := conn.WriteToUDP(query(t, "echo", id), server); err != nil {
						t.Fatal(err)
					}
				}
			}
			deadline := time.Now().Add(hangBound) // for all: a lost reply costs one wait
			lost := 0
			for _, conn := range conns {
				_ = conn.SetReadDeadline(deadline)
				for range each {
					buf := make([]byte, 512)
					n, from, err := conn.ReadFromUDPAddrPort(buf)
					if err != nil {
						lost++
						continue
					}
					if from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port()); from != want {
						t.Errorf("reply from %v, want %v", from, want)
					}
					id := replyID(t, buf[:n])
					if !asked[id] {
						t.Errorf("reply ID %d, not one asked or answered twice", id)
					}
					delete(asked, id)
				}
				// The handler saw the client as it is.
				if at := netip.AddrPortFrom(want.Addr(), uint16(conn.LocalAddr().(*net.UDPAddr).Port)); h.maxFor(at) == 0 {
					t.Errorf("no query seen from %v", at)
				}
			}
			if lost > 0 {
				t.Errorf("%d of %d queries got no reply", lost, clients*each)
			}
		})
	}
}
