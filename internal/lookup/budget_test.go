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
	_, err := h.(BudgetHandler).LookupBudget(context.Background(), 50*time.Millisecond, newQuery("slow.test.", dns.TypeA))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrTimeout for an exceeded deadline", err)
	}
	if waited := time.Since(start); waited > 900*time.Millisecond {
		t.Errorf("waited %v past a 50ms budget", waited)
	}
}

// A cache hit within a budget reads the cache with the budget's deadline
// and no timer behind it; a parent deadline that comes sooner wins.
func TestBudgetArmsNoTimerForAHit(t *testing.T) {
	z := &zoneResolver{records: map[string]string{"a.test.": "a.test. 100 IN A 192.0.2.1"}}
	st := &ctxStore{Store: cache.NewLayered(cache.NewMemory(cache.MemoryConfig{MaxEntries: 100, MaxBytes: 1 << 20}), nil)}
	h := Build(Config{Store: st, Resolver: z, Policy: dnsmsg.Policy{MaxTTL: time.Hour}, Registerer: prometheus.NewRegistry()}).(BudgetHandler)
	if _, err := h.LookupBudget(context.Background(), time.Minute, newQuery("a.test.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	res, err := h.LookupBudget(context.Background(), time.Minute, newQuery("a.test.", dns.TypeA))
	if err != nil || res.Source != SourceL1 {
		t.Fatalf("second lookup: %v, %+v; want an L1 hit", err, res)
	}
	d, ok := st.ctx.Deadline()
	if !ok || d.Before(before.Add(time.Minute-time.Second)) || d.After(time.Now().Add(time.Minute)) {
		t.Errorf("cache read deadline %v (set %v), want a minute from the lookup", d, ok)
	}
	if st.ctx.Done() != nil {
		t.Error("the cache read of a hit has a Done channel: a timer was armed")
	}

	parent, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := h.LookupBudget(parent, time.Minute, newQuery("a.test.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if d, _ := st.ctx.Deadline(); d.After(time.Now().Add(time.Second)) {
		t.Errorf("cache read deadline %v, want the parent's, a second away", d)
	}
}
