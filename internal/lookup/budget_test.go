package lookup

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// ctxStore is a Store that remembers the context of its last Get.
type ctxStore struct {
	Store
	ctx context.Context
}

func (s *ctxStore) Get(ctx context.Context, key string) (*cache.Entry, cache.Source, error) {
	s.ctx = ctx
	return s.Store.Get(ctx, key)
}

// A lookup within a budget waits for the resolver no longer than the
// budget, although no timer was armed for it at the start.
func TestBudgetEndsAWaitForTheResolver(t *testing.T) {
	z := &zoneResolver{delay: time.Second, records: map[string]string{}}
	h, _, _ := setup(t, z, 0)
	start := time.Now()
	_, err := h.LookupPeeked(context.Background(), &Peeked{Query: newQuery("slow.test.", dns.TypeA)}, 50*time.Millisecond)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrTimeout for an exceeded deadline", err)
	}
	if waited := time.Since(start); waited > 900*time.Millisecond {
		t.Errorf("waited %v past a 50ms budget", waited)
	}
}

// A cache hit within a budget reads the cache under the caller's context,
// with no timer armed for it; a parent deadline still bounds the read.
func TestBudgetArmsNoTimerForAHit(t *testing.T) {
	z := &zoneResolver{records: map[string]string{"a.test.": "a.test. 100 IN A 192.0.2.1"}}
	st := &ctxStore{Store: cache.NewLayered(cache.NewMemory(cache.MemoryConfig{MaxEntries: 100, MaxBytes: 1 << 20}), nil)}
	h := Build(Config{Store: st, Resolver: z, Policy: dnsmsg.Policy{MaxTTL: time.Hour}, Registerer: prometheus.NewRegistry()})
	defer h.Close()
	if _, err := h.LookupPeeked(context.Background(), &Peeked{Query: newQuery("a.test.", dns.TypeA)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	res, err := h.LookupPeeked(context.Background(), &Peeked{Query: newQuery("a.test.", dns.TypeA)}, time.Minute)
	if err != nil || res.Source != SourceL1 {
		t.Fatalf("second lookup: %v, %+v; want an L1 hit", err, res)
	}
	if st.ctx.Done() != nil {
		t.Error("the cache read of a hit has a Done channel: a timer was armed")
	}

	parent, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := h.LookupPeeked(parent, &Peeked{Query: newQuery("a.test.", dns.TypeA)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if d, ok := st.ctx.Deadline(); !ok || d.After(time.Now().Add(time.Second)) {
		t.Errorf("cache read deadline %v (set %v), want the parent's, a second away", d, ok)
	}
}
