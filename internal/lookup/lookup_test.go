package lookup

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// zoneResolver answers from a fixed table, like a tiny authoritative server,
// counting calls; it can be made to fail or stall.
type zoneResolver struct {
	calls   atomic.Int64
	delay   time.Duration
	fail    atomic.Bool
	records map[string]string
}

func (z *zoneResolver) Resolve(ctx context.Context, q []byte) ([]byte, error) {
	return viaMsg(ctx, q, z.answer)
}

// viaMsg answers the packed query q through answer, which works on
// dns.Msg, and packs what it says: a test resolver written on dns.Msg,
// as a Resolver.
func viaMsg(ctx context.Context, q []byte, answer func(context.Context, *dns.Msg) (*dns.Msg, error)) ([]byte, error) {
	m := new(dns.Msg)
	if err := m.Unpack(q); err != nil {
		return nil, err
	}
	a, err := answer(ctx, m)
	if err != nil {
		return nil, err
	}
	return a.Pack()
}

func (z *zoneResolver) answer(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	z.calls.Add(1)
	if z.delay > 0 {
		select {
		case <-time.After(z.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if z.fail.Load() {
		return nil, errors.New("resolver down")
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	if s, ok := z.records[q.Question[0].Name]; ok {
		rr, err := dns.NewRR(s)
		if err != nil {
			return nil, err
		}
		m.Answer = append(m.Answer, rr)
	} else {
		m.Rcode = dns.RcodeNameError
		soa, _ := dns.NewRR("test. 60 IN SOA ns.test. h.test. 1 2 3 4 30")
		m.Ns = append(m.Ns, soa)
	}
	return m, nil
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newQuery(name string, qtype uint16) *dnsmsg.Query {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	q, _ := dnsmsg.ParseQuery(m)
	return &q
}

func setup(t *testing.T, res Resolver, stale time.Duration) (*Chain, *clock, *prometheus.Registry) {
	t.Helper()
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	reg := prometheus.NewRegistry()
	mem := cache.NewMemory(cache.MemoryConfig{MaxEntries: 1000, MaxBytes: 1 << 20, Now: clk.Now})
	h := Build(Config{
		Store: cache.NewLayered(mem, nil), Resolver: res, Stale: stale,
		Policy: dnsmsg.Policy{MaxTTL: time.Hour}, Registerer: reg, Now: clk.Now,
	})
	t.Cleanup(func() { h.Close() })
	return h, clk, reg
}

func TestMissThenHitThenExpiry(t *testing.T) {
	z := &zoneResolver{records: map[string]string{"a.test.": "a.test. 100 IN A 192.0.2.1"}}
	h, clk, reg := setup(t, z, 0)
	ctx := context.Background()
	res, err := h.Lookup(ctx, newQuery("a.test.", dns.TypeA))
	if err != nil || res.Source != SourceResolver {
		t.Fatalf("first lookup: %v %v", res, err)
	}
	clk.Add(40 * time.Second)
	res, err = h.Lookup(ctx, newQuery("A.TEST.", dns.TypeA))
	if err != nil || res.Source != SourceL1 || res.Age() != 40 {
		t.Fatalf("second lookup: source %v age %v err %v; want l1 aged 40", res.Source, res.Age(), err)
	}
	clk.Add(61 * time.Second)
	if res, err = h.Lookup(ctx, newQuery("a.test.", dns.TypeA)); err != nil || res.Source != SourceResolver {
		t.Fatalf("after expiry: %v %v", res, err)
	}
	if z.calls.Load() != 2 {
		t.Errorf("%d resolver calls, want 2", z.calls.Load())
	}
	if got := counter(t, reg, "shardns_lookup_answers_total", "l1"); got != 1 {
		t.Errorf("l1 answers counted %v", got)
	}
}

func TestIdenticalMissesMakeOneCall(t *testing.T) {
	z := &zoneResolver{delay: 100 * time.Millisecond, records: map[string]string{"a.test.": "a.test. 100 IN A 192.0.2.1"}}
	h, _, _ := setup(t, z, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := h.Lookup(ctx, newQuery("a.test.", dns.TypeA)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := z.calls.Load(); n != 1 {
		t.Errorf("50 concurrent identical misses made %d resolver calls, want 1", n)
	}
}

func TestServeStaleWhenResolverFails(t *testing.T) {
	z := &zoneResolver{records: map[string]string{"a.test.": "a.test. 10 IN A 192.0.2.1"}}
	h, clk, _ := setup(t, z, time.Hour)
	ctx := context.Background()
	if _, err := h.Lookup(ctx, newQuery("a.test.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	z.fail.Store(true)
	clk.Add(30 * time.Second)
	res, err := h.Lookup(ctx, newQuery("a.test.", dns.TypeA))
	if err != nil || !res.Stale() {
		t.Fatalf("resolver down, entry in its stale window: %v %v; want stale", res, err)
	}
	clk.Add(2 * time.Hour)
	if _, err := h.Lookup(ctx, newQuery("a.test.", dns.TypeA)); !errors.Is(err, ErrResolver) {
		t.Fatalf("past the stale window: err %v, want ErrResolver", err)
	}
}

func TestWaiterGivesUpAtItsDeadline(t *testing.T) {
	z := &zoneResolver{delay: time.Second, records: map[string]string{}}
	h, _, _ := setup(t, z, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.Lookup(ctx, newQuery("slow.test.", dns.TypeA))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if time.Since(start) > 900*time.Millisecond {
		t.Errorf("waited %v past a 50ms deadline", time.Since(start))
	}
}

// counter reads the value of one labelled series of a counter family.
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
