package lookup

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// countingStore counts the reads of a Layered store, one by one and in
// batches, and its writes, waited for and not.
type countingStore struct {
	*cache.Layered
	gets, batches, batchKeys atomic.Int64
	l2Batches                atomic.Int64
	sets, asyncSets          atomic.Int64
}

func (s *countingStore) Set(ctx context.Context, key string, e *cache.Entry) error {
	s.sets.Add(1)
	return s.Layered.Set(ctx, key, e)
}

func (s *countingStore) SetAsync(ctx context.Context, key string, e *cache.Entry, done func(error)) bool {
	s.asyncSets.Add(1)
	return s.Layered.SetAsync(ctx, key, e, done)
}

func (s *countingStore) Get(ctx context.Context, key string) (*cache.Entry, cache.Source, error) {
	s.gets.Add(1)
	return s.Layered.Get(ctx, key)
}

func (s *countingStore) GetMany(ctx context.Context, keys []string, out []cache.Got) bool {
	s.batches.Add(1)
	s.batchKeys.Add(int64(len(keys)))
	return s.Layered.GetMany(ctx, keys, out)
}

func (s *countingStore) GetManyL2(ctx context.Context, keys []string, out []cache.Got) bool {
	s.l2Batches.Add(1)
	return s.Layered.GetManyL2(ctx, keys, out)
}

// Peek answers the fresh hits of a batch with one cache read and counts
// them as Lookup does; LookupPeeked goes on for the rest from that read (a
// miss is resolved, an entry in its stale window is served when the
// resolver fails) without reading the cache again.
func TestPeekThenLookupPeeked(t *testing.T) {
	z := &zoneResolver{records: map[string]string{
		"a.test.": "a.test. 100 IN A 192.0.2.1",
		"b.test.": "b.test. 10 IN A 192.0.2.2",
		"c.test.": "c.test. 100 IN A 192.0.2.3",
	}}
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	reg := prometheus.NewRegistry()
	st := &countingStore{Layered: cache.NewLayered(cache.NewMemory(cache.MemoryConfig{MaxEntries: 100, MaxBytes: 1 << 20, Now: clk.Now}), nil)}
	h := Build(Config{Store: st, Resolver: z, Stale: time.Hour, Policy: dnsmsg.Policy{MaxTTL: time.Hour},
		Registerer: reg, Now: clk.Now})
	ctx := context.Background()
	for _, name := range []string{"a.test.", "b.test."} {
		if _, err := h.Lookup(ctx, newQuery(name, dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(20 * time.Second) // b.test. is now stale, a.test. still fresh
	z.fail.Store(true)
	qs := []*dnsmsg.Query{newQuery("a.test.", dns.TypeA), newQuery("b.test.", dns.TypeA), newQuery("c.test.", dns.TypeA)}
	out := make([]Peeked, len(qs))
	for i, q := range qs {
		out[i].Query = q
	}
	gets, calls := st.gets.Load(), z.calls.Load()
	h.Peek(ctx, out, false)
	if st.batches.Load() != 1 || st.batchKeys.Load() != 3 {
		t.Errorf("%d batch reads of %d keys, want 1 of 3", st.batches.Load(), st.batchKeys.Load())
	}
	if !out[0].Hit || out[0].Result.Source != SourceL1 || out[0].Result.Age() != 20 {
		t.Errorf("a.test.: %+v, want a fresh L1 hit aged 20", out[0])
	}
	if out[1].Hit || out[2].Hit {
		t.Errorf("a stale entry or a miss answered as a hit: %+v, %+v", out[1], out[2])
	}
	if got := counter(t, reg, "shardns_lookup_answers_total", "l1"); got != 1 {
		t.Errorf("l1 answers counted %v, want 1", got)
	}

	res, err := h.LookupPeeked(ctx, &out[1], time.Second)
	if err != nil || !res.Stale() {
		t.Errorf("b.test. with the resolver down: %v, %v; want its stale entry", res, err)
	}
	if _, err := h.LookupPeeked(ctx, &out[2], time.Second); err == nil {
		t.Error("c.test. with the resolver down: answered, want a failure")
	}
	z.fail.Store(false)
	clk.Add(6 * time.Second) // past the failure cache's memory of c.test.
	res, err = h.LookupPeeked(ctx, &out[2], time.Second)
	if err != nil || res.Source != SourceResolver {
		t.Errorf("c.test.: %v, %v; want the resolver's answer", res, err)
	}
	if n := st.gets.Load() - gets; n != 0 {
		t.Errorf("LookupPeeked read the cache %d times, want none", n)
	}
	if n := z.calls.Load() - calls; n != 3 {
		t.Errorf("%d resolver calls, want 3 (b.test. once, c.test. twice)", n)
	}

	// Questions whose L1 a Peek of L1 alone just missed are read from
	// the shared tier alone, and only when every one of them was.
	for i, q := range qs {
		out[i] = Peeked{Query: q, L1Missed: true}
	}
	h.Peek(ctx, out, false)
	if st.l2Batches.Load() != 1 || st.batches.Load() != 1 {
		t.Errorf("%d reads of L2 alone and %d of every tier, want 1 and 1", st.l2Batches.Load(), st.batches.Load())
	}
	out[0] = Peeked{Query: qs[0]}
	h.Peek(ctx, out, false)
	if st.l2Batches.Load() != 1 || st.batches.Load() != 2 || !out[0].Hit {
		t.Errorf("%d reads of L2 alone and %d of every tier, a.test. hit %v; want 1, 2 and a hit", st.l2Batches.Load(), st.batches.Load(), out[0].Hit)
	}
}

// With WriteBehind, a miss is answered without waiting for its write to
// Redis, and a write that fails is still counted. Without it, the answer
// comes once the entry is in Redis.
func TestStoreWriteBehind(t *testing.T) {
	z := &zoneResolver{records: map[string]string{"a.test.": "a.test. 100 IN A 192.0.2.1", "b.test.": "b.test. 100 IN A 192.0.2.2"}}
	for _, behind := range []bool{true, false} {
		srv := redistest.Start(t)
		tier, err := cache.NewRing(cache.RedisConfig{Addrs: []string{srv.Addr}, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		store := &countingStore{Layered: cache.NewLayered(nil, tier)}
		reg := prometheus.NewRegistry()
		h := Build(Config{Store: store, Resolver: z, Policy: dnsmsg.Policy{MaxTTL: time.Hour}, WriteBehind: behind, Registerer: reg})
		if _, err := h.Lookup(context.Background(), newQuery("a.test.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		held := func() bool {
			n, err := srv.Client().Exists(t.Context(), "dns:{a.test.}:A:IN").Result()
			return err == nil && n == 1
		}
		if behind {
			waitUntil(t, "the write of a.test.", held)
		} else if !held() {
			t.Errorf("a.test. not in Redis when its lookup returned, without WriteBehind")
		}

		tier.Close()
		if _, err := h.Lookup(context.Background(), newQuery("b.test.", dns.TypeA)); err != nil {
			t.Fatalf("a miss with the shared tier closed: %v, want the resolver's answer", err)
		}
		waitUntil(t, "the failed write to be counted", func() bool {
			return counter(t, reg, "shardns_cache_errors_total", "set") == 1
		})
		want := [2]int64{0, 2} // waited-for writes, write-behind ones
		if !behind {
			want = [2]int64{2, 0}
		}
		if got := [2]int64{store.sets.Load(), store.asyncSets.Load()}; got != want {
			t.Errorf("WriteBehind %v: %d writes waited for, %d not; want %d and %d", behind, got[0], got[1], want[0], want[1])
		}
	}
}

// waitUntil polls cond until it holds, failing the test after 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// countingHandler counts its lookups and answers each with a fixed result.
type countingHandler struct {
	calls atomic.Int64
	res   *Result
}

func (h *countingHandler) Lookup(context.Context, *dnsmsg.Query) (*Result, error) {
	h.calls.Add(1)
	return h.res, nil
}

// A miss whose cache read came just before an identical call stored its
// answer, and that reaches the coalescing step after that call ended, is
// answered from L1 without asking below again; a refresh still asks.
func TestCoalesceLooksInL1First(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	mem := cache.NewMemory(cache.MemoryConfig{MaxEntries: 100, MaxBytes: 1 << 20, Now: clk.Now})
	l := cache.NewLayered(mem, nil)
	q := newQuery("a.test.", dns.TypeA)
	below := &countingHandler{res: &Result{Source: SourceResolver}}
	co := newCoalesceStep(below, time.Second, l, clk.Now, newMetrics(nil))
	defer co.close()
	if _, err := co.Lookup(context.Background(), q); err != nil || below.calls.Load() != 1 {
		t.Fatalf("a miss with L1 empty: %v, %d calls below, want 1", err, below.calls.Load())
	}
	e := answerEntry(t, "a.test. 100 IN A 192.0.2.1", clk.Now())
	if err := l.Set(context.Background(), q.Key, e); err != nil {
		t.Fatal(err)
	}
	res, err := co.Lookup(context.Background(), q)
	if err != nil || res.Source != SourceL1 || below.calls.Load() != 1 {
		t.Fatalf("a miss after the answer was stored: %+v, %v, %d calls below; want L1's entry, 1 call", res, err, below.calls.Load())
	}
	if _, err := co.Lookup(withRefresh(context.Background()), q); err != nil || below.calls.Load() != 2 {
		t.Fatalf("a refresh: %v, %d calls below, want 2", err, below.calls.Load())
	}
}

// answerEntry is the cache entry, stored at now, of a reply whose answer
// is the record rr (zone-file text) to a question for its owner and type.
func answerEntry(t *testing.T, rr string, now time.Time) *cache.Entry {
	t.Helper()
	r, err := dns.NewRR(rr)
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion(r.Header().Name, r.Header().Rrtype)
	m.Answer = append(m.Answer, r)
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := NewEntry(wire, dnsmsg.Policy{MaxTTL: time.Hour}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
