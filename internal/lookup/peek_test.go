package lookup

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// hitLog is a HitCounter that records what it is told.
type hitLog struct {
	mu         sync.Mutex
	hits, miss []string
}

func (h *hitLog) Hit(key string, _ *cache.Entry) {
	h.mu.Lock()
	h.hits = append(h.hits, key)
	h.mu.Unlock()
}
func (h *hitLog) Miss(key string) { h.mu.Lock(); h.miss = append(h.miss, key); h.mu.Unlock() }

// A Peek of L1 alone reads the key in bytes and allocates nothing on a
// hit; it sets the query's key and name from the cache's copy, and the
// chain's observers hear of the hit (the metrics and the fleet's hit
// counter) as they hear of a Lookup's. A miss leaves the query as it was.
func TestPeekL1(t *testing.T) {
	z := &zoneResolver{records: map[string]string{"a.test.": "a.test. 100 IN A 192.0.2.1"}}
	reg := prometheus.NewRegistry()
	hot := &hitLog{}
	mem := cache.NewMemory(cache.MemoryConfig{MaxEntries: 100, MaxBytes: 1 << 20})
	h := Build(Config{Store: cache.NewLayered(mem, nil), Resolver: z, Policy: dnsmsg.Policy{MaxTTL: time.Hour}, Registerer: reg, Hot: hot})
	defer h.Close()
	if _, err := h.Lookup(context.Background(), newQuery("a.test.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	want := newQuery("a.test.", dns.TypeA)
	key := []byte(want.Key)
	var q dnsmsg.Query
	ps := make([]Peeked, 1)
	peek := func() {
		q = *want
		q.Key, q.Name = "", ""
		ps[0] = Peeked{Query: &q, Key: key}
		h.Peek(context.Background(), ps, true)
	}
	if allocs := testing.AllocsPerRun(100, peek); allocs != 0 {
		t.Errorf("an L1 hit through Peek allocates %v times, want 0", allocs)
	}
	if !ps[0].Hit || ps[0].Result.Source != SourceL1 || q.Key != want.Key || q.Name != "a.test." {
		t.Fatalf("Peek of L1: %+v, query key %q name %q", ps[0], q.Key, q.Name)
	}
	if got := counter(t, reg, "shardns_lookup_answers_total", "l1"); got < 100 {
		t.Errorf("l1 answers counted %v, want every peeked hit", got)
	}
	if len(hot.hits) < 100 || hot.hits[0] != want.Key || len(hot.miss) != 1 {
		t.Errorf("hit counter told %d hits, %d misses; want every hit and the first lookup's miss", len(hot.hits), len(hot.miss))
	}

	other := newQuery("b.test.", dns.TypeA)
	ps[0] = Peeked{Query: &dnsmsg.Query{Type: dns.TypeA}, Key: []byte(other.Key)}
	h.Peek(context.Background(), ps, true)
	if ps[0].Hit || ps[0].Query.Key != "" {
		t.Errorf("a miss: %+v", ps[0])
	}
}
