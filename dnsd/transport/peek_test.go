package transport_test

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/dnsd/transport"
)

// peekHandler answers "hold" on the reader after its gate opens, "quick"
// on the reader at once, and leaves every other message to wait calls:
// the first wait call on several messages waits at the "peek" gate (as a
// read of the cache that takes its time), then every wait call echoes
// what it was given. It records the labels of each wait call.
type peekHandler struct {
	*handler
	mu     sync.Mutex
	waits  [][]string    // labels of each wait call, in order
	first  bool          // a wait call on several messages has begun
	inPeek chan struct{} // closed when the first wait call on several begins
}

func newPeekHandler() *peekHandler {
	return &peekHandler{handler: newHandler(), inPeek: make(chan struct{})}
}

func (h *peekHandler) Serve(ctx context.Context, ms []transport.Msg, wait bool) {
	if !wait {
		for i := range ms {
			m := &ms[i]
			switch label := firstLabel(m.Req); label {
			case "hold", "quick":
				m.Reply, m.Done = h.ServeMessage(ctx, m.Req, m.From, m.Dst), true
			}
		}
		return
	}
	labels := make([]string, len(ms))
	for i := range ms {
		labels[i] = firstLabel(ms[i].Req)
	}
	h.mu.Lock()
	h.waits = append(h.waits, labels)
	first := len(ms) > 1 && !h.first
	h.first = h.first || len(ms) > 1
	h.mu.Unlock()
	if first {
		close(h.inPeek)
		select {
		case <-h.gate("peek"):
		case <-ctx.Done():
			return
		}
	}
	for i := range ms {
		m := &ms[i]
		m.Reply, m.Done = h.ServeMessage(ctx, m.Req, m.From, m.Dst), true
	}
}

// waitCalls are the labels of every wait call so far.
func (h *peekHandler) waitCalls() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.waits)
}

// startPeek serves h on one UDP socket of 127.0.0.1 whose reader waits at
// most peekWait for a wait call on several datagrams, and returns the
// address.
func startPeek(t *testing.T, h *peekHandler, peekWait time.Duration) string {
	t.Helper()
	srv := transport.New(transport.Config{Handler: h, UDPSockets: 1, Registerer: prometheus.NewRegistry()})
	transport.SetUDPPeekWait(srv, peekWait)
	listenUntilCleanup(t, srv, h.releaseAll, "127.0.0.1:0")
	return srv.Addrs()[0].String()
}

// readManyLeft makes the reader leave transport.UDPGateMin datagrams of
// one read to a worker, whose wait call then waits at h's "peek" gate:
// while the reader is held at the "hold" gate, they queue in the socket.
// It reads the reply to "hold".
func readManyLeft(t *testing.T, h *peekHandler, u *net.UDPConn) {
	t.Helper()
	readLeft(t, h, u, transport.UDPGateMin)
}

// readLeft is readManyLeft with n datagrams (at least 2).
func readLeft(t *testing.T, h *peekHandler, u *net.UDPConn, n int) {
	t.Helper()
	releaseHold := h.hold("hold")
	if _, err := u.Write(query(t, "hold", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reader to be held", func() bool { return h.running.Load() == 1 })
	for id := uint16(2); id < 2+uint16(n); id++ {
		if _, err := u.Write(query(t, "first", id)); err != nil {
			t.Fatal(err)
		}
	}
	releaseHold()
	if b := readDatagram(u, hangBound); b == nil || replyID(t, b) != 1 {
		t.Fatal("no reply to the held query")
	}
	select {
	case <-h.inPeek:
	case <-time.After(hangBound):
		t.Fatal("no wait call on the datagrams left")
	}
}

// Datagrams that arrive while a worker reads the cache for a read's
// leftovers wait in the socket until that read is done, then are read
// and looked up together: one wait call for all of them, not one each as
// they came.
func TestUDPReadWaitsForCacheRead(t *testing.T) {
	h := newPeekHandler()
	releasePeek := h.hold("peek")
	u := dialUDP(t, startPeek(t, h, hangBound))
	readManyLeft(t, h, u)
	const later = 5
	for i := range later {
		if _, err := u.Write(query(t, "later", uint16(10+i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // each could be read alone
	}
	releasePeek()
	seen := map[uint16]bool{}
	for len(seen) < transport.UDPGateMin+later {
		b := readDatagram(u, hangBound)
		if b == nil {
			t.Fatalf("%d of %d replies", len(seen), transport.UDPGateMin+later)
		}
		seen[replyID(t, b)] = true
	}
	want := [][]string{slices.Repeat([]string{"first"}, transport.UDPGateMin), slices.Repeat([]string{"later"}, later)}
	if got := h.waitCalls(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("wait calls %v, want %v", got, want)
	}
}

// A worker's read of the cache that does not end holds the reader up for
// peekWait at most: it then reads on, and answers what it can at once.
func TestUDPReadWaitIsBounded(t *testing.T) {
	h := newPeekHandler()
	h.hold("peek") // never released before the test ends
	u := dialUDP(t, startPeek(t, h, 20*time.Millisecond))
	readManyLeft(t, h, u)
	for id := range uint16(3) {
		if _, err := u.Write(query(t, "quick", 100+id)); err != nil {
			t.Fatal(err)
		}
		b := readDatagram(u, hangBound)
		if b == nil {
			t.Fatalf("quick query %d: no reply while a read of the cache hangs", id)
		}
		if got := replyID(t, b); got != 100+id {
			t.Fatalf("reply %d, want %d", got, 100+id)
		}
	}
	for _, labels := range h.waitCalls() {
		if slices.Contains(labels, "quick") {
			t.Errorf("wait call on %v: the quick queries are answered at once", labels)
		}
	}
}

// A read that leaves fewer than UDPGateMin datagrams does not hold the
// reader up: while their wait call hangs, what can be answered at once
// still is.
func TestUDPFewLeftoversHoldNothingUp(t *testing.T) {
	h := newPeekHandler()
	h.hold("peek") // never released before the test ends
	u := dialUDP(t, startPeek(t, h, 3*hangBound))
	readLeft(t, h, u, transport.UDPGateMin-1)
	if _, err := u.Write(query(t, "quick", 100)); err != nil {
		t.Fatal(err)
	}
	if b := readDatagram(u, hangBound); b == nil || replyID(t, b) != 100 {
		t.Fatal("no reply to a quick query while a few leftovers' wait call hangs")
	}
}
