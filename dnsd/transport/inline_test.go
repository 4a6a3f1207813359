package transport_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/dnsd/transport"
)

// inlineHandler answers queries whose first label starts with "quick" at
// once, with RA set so the test sees which way a reply took; the rest go
// to handler.
type inlineHandler struct {
	*handler
	inline atomic.Int64
}

var _ transport.InlineHandler = (*inlineHandler)(nil)

func (h *inlineHandler) ServeInline(req []byte, _ transport.Peer, dst []byte) ([]byte, bool) {
	if !strings.HasPrefix(firstLabel(req), "quick") {
		return nil, false
	}
	h.inline.Add(1)
	dst = append(dst, req...)
	dst[2] |= 0x80
	dst[3] |= 0x80 // RA: answered inline
	return dst, true
}

// startInline runs a server for h with cfg on 127.0.0.1:0 and returns its
// UDP address.
func startInline(t *testing.T, h *inlineHandler, cfg transport.Config) string {
	t.Helper()
	cfg.Handler, cfg.Registerer = h, prometheus.NewRegistry()
	srv := transport.New(cfg)
	if err := srv.Listen([]string{"127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.releaseAll()
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv.Addrs()[0].String()
}

// A message the handler can answer at once is answered on the reader,
// without a slot of MaxUDPInFlight: with the only slot held, quick
// queries are still answered; the others are still dropped.
func TestUDPInline(t *testing.T) {
	h := &inlineHandler{handler: newHandler()}
	h.hold("block")
	addr := startInline(t, h, transport.Config{MaxUDPInFlight: 1})
	u := dialUDP(t, addr)
	if _, err := u.Write(query(t, "block", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the held query to reach the handler", func() bool { return h.running.Load() == 1 })
	for id := range uint16(20) {
		if _, err := u.Write(query(t, "quick", 100+id)); err != nil {
			t.Fatal(err)
		}
		b := readDatagram(u, hangBound)
		if b == nil {
			t.Fatalf("quick query %d: no reply while the only slot was held", id)
		}
		if got := replyID(t, b); got != 100+id || b[3]&0x80 == 0 {
			t.Fatalf("reply ID %d RA %v, want ID %d answered inline", got, b[3]&0x80 != 0, 100+id)
		}
	}
	if n := h.inline.Load(); n != 20 {
		t.Errorf("%d inline answers, want 20", n)
	}
	if n := h.calls.Load(); n != 1 {
		t.Errorf("ServeMessage called %d times, want 1 (the held query)", n)
	}
}

// Several sockets share the port: queries from many clients, spread over
// them by the kernel, are all answered, inline or not, from the one
// address.
func TestUDPSockets(t *testing.T) {
	h := &inlineHandler{handler: newHandler()}
	addr := startInline(t, h, transport.Config{UDPSockets: 4})
	const clients = 32
	for i := range clients {
		u := dialUDP(t, addr)
		label := "echo"
		if i%2 == 0 {
			label = "quick"
		}
		if _, err := u.Write(query(t, label, uint16(i))); err != nil {
			t.Fatal(err)
		}
		b := readDatagram(u, hangBound)
		if b == nil {
			t.Fatalf("client %d: no reply", i)
		}
		if got := replyID(t, b); got != uint16(i) || (b[3]&0x80 != 0) != (label == "quick") {
			t.Fatalf("client %d: reply ID %d RA %v", i, got, b[3]&0x80 != 0)
		}
	}
	if a, b := h.inline.Load(), h.calls.Load(); a != clients/2 || b != clients/2 {
		t.Errorf("%d inline and %d ServeMessage answers, want %d each", a, b, clients/2)
	}
}
