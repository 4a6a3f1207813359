package fleetstats

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

func TestQuantile(t *testing.T) {
	h := histogram{count: 10, buckets: []bucket{{0.1, 2}, {0.2, 6}, {0.4, 8}}}
	for _, tc := range []struct{ q, want float64 }{
		{0, 0},
		{0.1, 0.05},  // rank 1 of 2 in (0, 0.1]
		{0.5, 0.175}, // rank 5: 3 of 4 in (0.1, 0.2]
		{0.8, 0.4},   // rank 8: the top of (0.2, 0.4]
		{0.9, 0.4},   // rank 9 is in +Inf: the highest finite bound
		{1, 0.4},
		{math.NaN(), 0},
	} {
		if got := h.quantile(tc.q); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := (histogram{}).quantile(0.5); got != 0 {
		t.Errorf("empty histogram: %v", got)
	}
	// Empty buckets before the rank are skipped, not divided by.
	h = histogram{count: 4, buckets: []bucket{{0.1, 0}, {0.2, 0}, {0.4, 4}}}
	if got := h.quantile(0.5); math.Abs(got-0.3) > 1e-12 {
		t.Errorf("quantile after empty buckets = %v, want 0.3", got)
	}
}

func TestHistogramSince(t *testing.T) {
	prev := histogram{count: 5, buckets: []bucket{{0.1, 2}, {0.2, 5}}}
	cur := histogram{count: 9, buckets: []bucket{{0.1, 3}, {0.2, 8}}}
	d := cur.since(prev)
	if d.count != 4 || d.buckets[0].count != 1 || d.buckets[1].count != 3 {
		t.Errorf("since = %+v", d)
	}
	// A reset (counts went down) gives the current histogram whole.
	if d := prev.since(cur); d.count != 5 {
		t.Errorf("since after reset = %+v", d)
	}
}

// zone answers a.test. and fails every other name.
type zone struct{}

func (zone) answer(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	if q.Question[0].Name != "a.test." {
		return nil, errors.New("no upstream")
	}
	m := new(dns.Msg)
	m.SetReply(q)
	rr, err := dns.NewRR("a.test. 300 IN A 192.0.2.1")
	if err != nil {
		return nil, err
	}
	m.Answer = append(m.Answer, rr)
	return m, nil
}

// TestLookupChainMetrics publishes what a real lookup chain counted, so a
// renamed chain metric fails here.
func TestLookupChainMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	chain := lookup.Build(lookup.Config{
		Store:        cache.NewLayered(cache.NewMemory(cache.MemoryConfig{MaxEntries: 100, MaxBytes: 1 << 20}), nil),
		Resolver:     dnstest.MsgResolver(zone{}.answer),
		Registerer:   reg,
		PrefetchHits: -1,
		FailureTTL:   -1,
	})
	ask := func(name string) {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		q, rej := dnsmsg.ParseQuery(m)
		if rej != nil {
			t.Fatalf("ParseQuery: %+v", rej)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, _ = chain.Lookup(ctx, &q)
	}
	ask("a.test.") // resolver
	ask("a.test.") // l1
	ask("a.test.") // l1
	ask("b.test.") // failure

	srv := redistest.Start(t)
	c := srv.Client()
	p := NewPublisher(PublisherConfig{Redis: c, ID: "chain", Kind: "dnsd", Gatherer: reg})
	if err := p.Publish(t.Context()); err != nil {
		t.Fatal(err)
	}
	f := byID(readFleet(t, c, time.Now()), "chain")
	if f == nil || f.Queries != 4 || f.L1Hits != 2 || f.Misses != 1 || f.Errors != 1 || f.RedisHits != 0 || f.Stale != 0 {
		t.Fatalf("published %+v; want 4 queries: 2 l1 hits, 1 miss, 1 error", f)
	}
	if f.P99Ms <= 0 {
		t.Errorf("p99 %vms: the duration histogram was not read", f.P99Ms)
	}
}
