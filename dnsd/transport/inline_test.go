package transport_test

import (
	"context"
	"net"
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
	held   atomic.Int64 // inline answers that waited at a gate
}

var _ transport.Handler = (*inlineHandler)(nil)

// Serve answers the "quick" queries of the reader's call at once and
// leaves the rest to handler.
func (h *inlineHandler) Serve(ctx context.Context, ms []transport.Msg, wait bool) {
	if wait {
		h.handler.Serve(ctx, ms, wait)
		return
	}
	for i := range ms {
		m := &ms[i]
		m.Reply, m.Done = h.serveInline(m.Req, m.Dst)
	}
}

func (h *inlineHandler) serveInline(req []byte, dst []byte) ([]byte, bool) {
	label := firstLabel(req)
	if !strings.HasPrefix(label, "quick") {
		return nil, false
	}
	if g := h.gate(label); g != nil {
		h.held.Add(1)
		<-g // only tests hold an inline answer: to let datagrams queue up
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
	return startInlineOn(t, h, cfg, "127.0.0.1:0")
}

// startInlineOn is startInline on listen.
func startInlineOn(t testing.TB, h *inlineHandler, cfg transport.Config, listen string) string {
	t.Helper()
	cfg.Handler = h
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	srv := transport.New(cfg)
	listenUntilCleanup(t, srv, h.releaseAll, listen)
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

// Datagrams that queue up while the reader is busy are read and answered
// in batches (one recvmmsg and one sendmmsg for many on Linux): every one
// is answered, to the client that sent it, inline or not.
func TestUDPBatches(t *testing.T) {
	h := &inlineHandler{handler: newHandler()}
	release := h.hold("quickhold")
	reg := prometheus.NewRegistry()
	addr := startInline(t, h, transport.Config{UDPSockets: 1, Registerer: reg})
	first := dialUDP(t, addr)
	if _, err := first.Write(query(t, "quickhold", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reader to be held", func() bool { return h.held.Load() == 1 })
	const clients, each = 4, 25
	conns := make([]*net.UDPConn, clients)
	for c := range conns {
		conns[c] = dialUDP(t, addr)
		for i := range each {
			label := "quick"
			if i%5 == 4 {
				label = "echo"
			}
			if _, err := conns[c].Write(query(t, label, uint16(c*1000+i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	release()
	if b := readDatagram(first, hangBound); b == nil || replyID(t, b) != 1 {
		t.Fatal("no reply to the held query")
	}
	for c, u := range conns {
		seen := map[uint16]bool{}
		for range each {
			b := readDatagram(u, hangBound)
			if b == nil {
				t.Fatalf("client %d: %d of %d replies", c, len(seen), each)
			}
			id := replyID(t, b)
			if int(id)/1000 != c || seen[id] {
				t.Fatalf("client %d: reply ID %d is not one of its own, or came twice", c, id)
			}
			inline := b[3]&0x80 != 0
			if inline != (id%5 != 4) {
				t.Fatalf("client %d: reply %d answered inline %v", c, id, inline)
			}
			seen[id] = true
		}
	}
	reads, datagrams := batchStats(t, reg)
	if datagrams != 1+clients*each {
		t.Errorf("%d datagrams read, want %d", datagrams, 1+clients*each)
	}
	if reads >= datagrams {
		t.Errorf("%d reads for %d datagrams: nothing was read in batches", reads, datagrams)
	}
}

// batchStats reads the batch-size histogram: how many read calls returned
// datagrams, and how many datagrams they returned in all.
func batchStats(t *testing.T, reg *prometheus.Registry) (reads, datagrams uint64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "shardns_dns_udp_read_batch_datagrams" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), uint64(h.GetSampleSum())
		}
	}
	t.Fatal("metric shardns_dns_udp_read_batch_datagrams not found")
	return 0, 0
}
