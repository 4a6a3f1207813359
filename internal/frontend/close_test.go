package frontend

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/testutil/dnstest"
)

// refreshHolder answers its first call with a record of one second, and
// holds every later call (the refresh) until its context ends.
type refreshHolder struct {
	calls atomic.Int64
	held  chan struct{}
}

func (r *refreshHolder) answer(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if r.calls.Add(1) > 1 {
		r.held <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(192, 0, 2, 1)}}
	return m, nil
}

// Close ends the chain's refreshes in flight: it returns at once and no
// goroutine of the frontend outlives it.
func TestCloseEndsTheChainsRefreshes(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	res := &refreshHolder{held: make(chan struct{}, 4)}
	f := Flags{L1: 1000}
	f.PrefetchHits, f.MaxTTL = 2, time.Hour
	fe, err := Build(f, dnstest.MsgResolver(res.answer), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion("hot.test.", dns.TypeA)
	q, _ := dnsmsg.ParseQuery(m)
	if _, err := fe.Chain.Lookup(t.Context(), &q); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // past the refresh time of a TTL of 1 s
	for range 2 {
		if res, err := fe.Chain.Lookup(t.Context(), &q); err != nil || res.Source != "l1" {
			t.Fatalf("a hit: %+v, %v", res, err)
		}
	}
	select {
	case <-res.held:
	case <-time.After(5 * time.Second):
		t.Fatal("no refresh reached the resolver")
	}
	start := time.Now()
	if err := fe.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v with a refresh in flight", took)
	}
	goleak.VerifyNone(t, opt)
}
