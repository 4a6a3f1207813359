package forward

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// tapped is one exchange a Tap was told of.
type tapped struct {
	proto          string
	upstream       netip.AddrPort
	sent, received time.Time
	query, resp    []byte
}

// tapRecorder is a Tap that keeps what it is told.
type tapRecorder struct {
	mu  sync.Mutex
	got []tapped
}

func (r *tapRecorder) Exchanged(proto string, upstream netip.AddrPort, sent, received time.Time, query, resp []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rc []byte
	if resp != nil {
		rc = append([]byte{}, resp...)
	}
	r.got = append(r.got, tapped{proto, upstream, sent, received, append([]byte{}, query...), rc})
}

func (r *tapRecorder) all() []tapped {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tapped(nil), r.got...)
}

func mustUnpack(t *testing.T, b []byte) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	return m
}

// The tap sees the query as it went to the upstream (its random ID, the
// name in 0x20 case) and the reply as it came (the same ID and spelling),
// once per exchange with an upstream: here a UDP answer that was
// truncated, then the TCP one.
func TestTapSeesTheWire(t *testing.T) {
	rec := &recorder{next: dns.HandlerFunc(bigTXT)}
	addr := startBoth(t, rec)
	tap := &tapRecorder{}
	f := newForwarder(t, Config{Upstreams: []string{addr}, HealthInterval: -1, Tap: tap})
	before := time.Now()
	if _, _, err := f.Exchange(ctxFor(t, 5*time.Second), query("big.example.", dns.TypeTXT)); err != nil {
		t.Fatal(err)
	}
	got := tap.all()
	var protos []string
	for _, x := range got {
		protos = append(protos, x.proto)
	}
	if strings.Join(protos, ",") != "udp,tcp" {
		t.Fatalf("tap saw exchanges over %v, want udp then tcp", protos)
	}
	seen, _, _ := rec.snapshot()
	for i, x := range got {
		if x.upstream.String() != addr {
			t.Errorf("exchange %d: upstream %v, want %s", i, x.upstream, addr)
		}
		if x.sent.Before(before) || x.received.Before(x.sent) {
			t.Errorf("exchange %d: sent %v, received %v", i, x.sent, x.received)
		}
		q, r := mustUnpack(t, x.query), mustUnpack(t, x.resp)
		if q.Id != seen[i].Id || q.Question[0].Name != seen[i].Question[0].Name {
			t.Errorf("exchange %d: tapped query %d %s, the upstream saw %d %s", i, q.Id, q.Question[0].Name, seen[i].Id, seen[i].Question[0].Name)
		}
		if !r.Response || r.Id != q.Id || r.Question[0].Name != q.Question[0].Name {
			t.Errorf("exchange %d: tapped reply %d %s to query %d %s", i, r.Id, r.Question[0].Name, q.Id, q.Question[0].Name)
		}
		if want := i == 0; r.Truncated != want {
			t.Errorf("exchange %d: TC=%v, want %v", i, r.Truncated, want)
		}
	}
}

// With 0x20 on, the tapped reply keeps the case it came in, not the
// caller's spelling the answer is given in.
func TestTapKeepsCaseAsReceived(t *testing.T) {
	rec := &recorder{next: answerA("127.0.0.7")}
	addr := startBoth(t, rec)
	tap := &tapRecorder{}
	f := newForwarder(t, Config{Upstreams: []string{addr}, HealthInterval: -1, Tap: tap})
	const name = "abcdefghijklmnop.example."
	for range 5 { // one spelling in 2^16 is the caller's
		resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), query(name, dns.TypeA))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Question[0].Name != name {
			t.Fatalf("answer question %q", resp.Question[0].Name)
		}
	}
	differ := 0
	for i, x := range tap.all() {
		q, r := mustUnpack(t, x.query), mustUnpack(t, x.resp)
		if r.Question[0].Name != q.Question[0].Name || !strings.EqualFold(q.Question[0].Name, name) {
			t.Errorf("exchange %d: reply %q to query %q", i, r.Question[0].Name, q.Question[0].Name)
		}
		if q.Question[0].Name != name {
			differ++
		}
	}
	if differ == 0 {
		t.Error("no tapped query went in random case")
	}
}

// A query that got no answer is tapped with a nil reply.
func TestTapUnanswered(t *testing.T) {
	hole, _ := blackhole(t)
	tap := &tapRecorder{}
	f := newForwarder(t, Config{Upstreams: []string{hole}, Timeout: 100 * time.Millisecond, HealthInterval: -1, Tap: tap})
	if _, _, err := f.Exchange(ctxFor(t, 2*time.Second), query("x.example.", dns.TypeA)); err == nil {
		t.Fatal("a blackhole answered")
	}
	got := tap.all()
	if len(got) != 1 || got[0].resp != nil || mustUnpack(t, got[0].query).Question[0].Name == "" {
		t.Fatalf("tap saw %d exchanges (the first with a reply: %v), want one query with no reply", len(got), len(got) > 0 && got[0].resp != nil)
	}
	if d := got[0].received.Sub(got[0].sent); d < 50*time.Millisecond {
		t.Errorf("gave up after %v, want about the 100ms timeout", d)
	}
}
