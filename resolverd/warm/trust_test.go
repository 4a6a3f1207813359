package warm

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// flakyResolver answers A questions with 192.0.2.1 (TTL 300) until it is
// made to fail; then it answers SERVFAIL.
type flakyResolver struct {
	failing atomic.Bool
	calls   atomic.Int64
}

func (r *flakyResolver) Resolve(_ context.Context, wire []byte) ([]byte, error) {
	r.calls.Add(1)
	q := new(dns.Msg)
	if err := q.Unpack(wire); err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	if r.failing.Load() {
		m.Rcode = dns.RcodeServerFailure
		return m.Pack()
	}
	a, _ := dns.NewRR(q.Question[0].Name + " 300 IN A 192.0.2.1")
	m.Answer = []dns.RR{a}
	return m.Pack()
}

// testClock is a settable clock shared by the workers, the tier and the
// chain.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestRefreshServfailKeepsGoodEntry: a worker refreshes an entry past its
// TTL while the resolver answers SERVFAIL. The entry in Redis keeps the
// good data, and a frontend's query inside the stale window gets it,
// served stale (TTL 30, EDE 3), rather than the SERVFAIL.
func TestRefreshServfailKeepsGoodEntry(t *testing.T) {
	srv := redistest.Start(t)
	clk := &testClock{t: time.Now()}
	store, err := cache.NewRing(cache.RedisConfig{Addrs: []string{srv.Addr}, Timeout: 500 * time.Millisecond, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	res := &flakyResolver{}
	policy := dnsmsg.Policy{MaxTTL: 24 * time.Hour}
	w, err := New(Config{Resolver: res, Store: store, Policy: policy, Stale: time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const key = "dns:{www.warm.test.}:A:IN"
	if _, err := w.Handle(ctx, warmTask("www.warm.test", "A")); err != nil {
		t.Fatal(err)
	}
	good, err := srv.Client().Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}

	clk.Add(301 * time.Second) // past the TTL, inside the stale window
	res.failing.Store(true)
	refresh := &queue.Task{ID: "t-refresh", Job: "j", Kind: queue.KindRefresh, Key: key, Created: clk.Now()}
	if _, err := w.Handle(ctx, refresh); err == nil {
		t.Error("a refresh answered SERVFAIL reported success")
	}
	if now, err := srv.Client().Get(ctx, key).Bytes(); err != nil || !bytes.Equal(now, good) {
		t.Fatalf("after the failed refresh Redis holds %x (%v), want the good entry %x", now, err, good)
	}

	chain := lookup.Build(lookup.Config{Store: cache.NewLayered(nil, store), Resolver: res, Policy: policy,
		Stale: time.Hour, Now: clk.Now, PrefetchHits: -1})
	q := clientQuery(t, "www.warm.test.", dns.TypeA)
	q.EDNS = true
	got, err := chain.Lookup(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Stale() {
		t.Fatalf("query inside the stale window: source %s, want stale", got.Source)
	}
	m := new(dns.Msg)
	if err := m.Unpack(dnsmsg.AppendReply(nil, got.Stored(), q, dnsmsg.ReplyOptions{Age: got.Age(), Stale: true})); err != nil {
		t.Fatal(err)
	}
	var ede uint16
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				ede = e.InfoCode
			}
		}
	}
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].Header().Ttl != dnsmsg.StaleTTL ||
		m.Answer[0].(*dns.A).A.String() != "192.0.2.1" || ede != dns.ExtendedErrorCodeStaleAnswer {
		t.Errorf("reply %v; want the good A record with TTL 30 and EDE 3", m)
	}
	if now, err := srv.Client().Get(ctx, key).Bytes(); err != nil || !bytes.Equal(now, good) {
		t.Errorf("after the query Redis holds %x (%v), want the good entry", now, err)
	}
}
