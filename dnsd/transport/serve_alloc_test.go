package transport

import (
	"context"
	"net/netip"
	"testing"
)

// echoAtOnce answers every message in the reader's call: a copy of it.
type echoAtOnce struct{}

func (echoAtOnce) Serve(_ context.Context, ms []Msg, _ bool) {
	for i := range ms {
		m := &ms[i]
		m.Reply, m.Done = append(m.Dst, m.Req...), true
	}
}

// sink is a dgramWriter that sends nothing and counts what it was given.
type sink struct{ n int }

func (s *sink) writeBatch(ms []dgram) (int, error) { s.n += len(ms); return len(ms), nil }

// A read whose every datagram the Handler answers at once costs the
// reading goroutine no allocation: the messages, the replies' room and the
// datagrams to send are the reader's own, reused from read to read.
func TestReaderAnswersAtOnceWithoutAllocating(t *testing.T) {
	s := New(Config{Handler: echoAtOnce{}})
	defer s.cancel()
	w := &sink{}
	r := s.newUDPReader(nil, w)
	for i := range r.in {
		n := copy(r.in[i].b, "\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01")
		r.in[i].n, r.in[i].peer = n, netip.MustParseAddrPort("127.0.0.1:40000")
	}
	allocs := testing.AllocsPerRun(100, func() { r.serve(udpBatch) })
	if allocs != 0 && !raceEnabled { // the race detector allocates
		t.Errorf("%v allocations per read of %d datagrams answered at once, want 0", allocs, udpBatch)
	}
	if w.n != 101*udpBatch {
		t.Errorf("%d replies sent, want %d", w.n, 101*udpBatch)
	}
}
