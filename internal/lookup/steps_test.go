package lookup

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
)

func TestFailureCacheSparesTheResolver(t *testing.T) {
	z := &zoneResolver{records: map[string]string{}}
	z.fail.Store(true)
	h, clk, reg := setup(t, z, 0)
	ctx := context.Background()
	for range 10 {
		if _, err := h.Lookup(ctx, newQuery("down.test.", dns.TypeA)); !errors.Is(err, ErrResolver) {
			t.Fatalf("err %v, want ErrResolver", err)
		}
	}
	if n := z.calls.Load(); n != 1 {
		t.Errorf("10 lookups of a failing name made %d resolver calls, want 1", n)
	}
	if got := gauge(t, reg, "shardns_lookup_failure_cache_hits_total"); got != 9 {
		t.Errorf("failure cache hits counted %v, want 9", got)
	}
	z.fail.Store(false)
	clk.Add(6 * time.Second)
	if _, err := h.Lookup(ctx, newQuery("down.test.", dns.TypeA)); err != nil {
		t.Fatalf("after the failure TTL the resolver is asked again: %v", err)
	}
	if n := z.calls.Load(); n != 2 {
		t.Errorf("%d resolver calls, want 2", n)
	}
}

func TestPrefetchRefreshesPopularEntryOnce(t *testing.T) {
	z := &zoneResolver{records: map[string]string{"hot.test.": "hot.test. 100 IN A 192.0.2.1"}}
	h, clk, reg := setup(t, z, 0)
	ctx := context.Background()
	q := newQuery("hot.test.", dns.TypeA)
	if _, err := h.Lookup(ctx, q); err != nil {
		t.Fatal(err)
	}
	// Early hits never refresh.
	for range 5 {
		if _, err := h.Lookup(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if n := z.calls.Load(); n != 1 {
		t.Fatalf("%d calls before the last tenth of the TTL", n)
	}
	clk.Add(95 * time.Second)
	for range 5 {
		if res, err := h.Lookup(ctx, q); err != nil || res.Source != SourceL1 {
			t.Fatalf("hit near expiry: %v %v", res, err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for z.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if n := z.calls.Load(); n != 2 {
		t.Fatalf("%d resolver calls, want exactly one refresh", n)
	}
	// The refreshed entry is fresh past the old expiry: no miss.
	clk.Add(10 * time.Second)
	res, err := h.Lookup(ctx, q)
	if err != nil || res.Source != SourceL1 {
		t.Fatalf("after the old expiry: %v %v; want a hit on the refreshed entry", res, err)
	}
	if got := counter(t, reg, "shardns_lookup_prefetch_total", "refreshed"); got != 1 {
		t.Errorf("prefetch refreshed counted %v", got)
	}
}

// gauge reads an unlabelled counter or gauge.
func gauge(t *testing.T, reg interface {
	Gather() ([]*dto.MetricFamily, error)
}, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}

// wireResolver answers every query with what answer makes of it.
type wireResolver func(q []byte) []byte

func (f wireResolver) Resolve(_ context.Context, q []byte) ([]byte, error) { return f(q), nil }

// TestResolveRefusesOtherAnswers checks that an answer to another
// question, or one that does not parse, is a resolver failure and is
// not stored.
func TestResolveRefusesOtherAnswers(t *testing.T) {
	good := func(q []byte) []byte {
		m := new(dns.Msg)
		if err := m.Unpack(q); err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		r.SetReply(m)
		rr, _ := dns.NewRR(m.Question[0].Name + " 100 IN A 192.0.2.1")
		r.Answer = append(r.Answer, rr)
		b, _ := r.Pack()
		return b
	}
	for name, f := range map[string]wireResolver{
		"other ID":    func(q []byte) []byte { b := good(q); b[1]++; return b },
		"other name":  func(q []byte) []byte { b := good(q); b[13] = 'z'; return b },
		"cut":         func(q []byte) []byte { b := good(q); return b[:len(b)-2] },
		"empty":       func([]byte) []byte { return nil },
		"extra bytes": func(q []byte) []byte { return append(good(q), 0) },
	} {
		h, _, _ := setup(t, f, 0)
		if res, err := h.Lookup(context.Background(), newQuery("a.test.", dns.TypeA)); !errors.Is(err, ErrResolver) {
			t.Errorf("%s: %+v %v, want ErrResolver", name, res, err)
		}
	}
	h, _, _ := setup(t, wireResolver(good), 0)
	if res, err := h.Lookup(context.Background(), newQuery("a.test.", dns.TypeA)); err != nil || res.Source != SourceResolver {
		t.Errorf("the good answer: %+v %v", res, err)
	}
}

// The in-process prefetch follows the fleet's rule (cache.Entry.RefreshAt):
// an entry of 20 s is refreshed from 3 s before it expires, not only in
// its last tenth (2 s).
func TestPrefetchLeadOfAShortTTL(t *testing.T) {
	z := &zoneResolver{records: map[string]string{"short.test.": "short.test. 20 IN A 192.0.2.1"}}
	h, clk, _ := setup(t, z, 0)
	ctx := context.Background()
	q := newQuery("short.test.", dns.TypeA)
	if _, err := h.Lookup(ctx, q); err != nil {
		t.Fatal(err)
	}
	clk.Add(17500 * time.Millisecond)
	for range 3 {
		if res, err := h.Lookup(ctx, q); err != nil || res.Source != SourceL1 {
			t.Fatalf("hit near expiry: %v %v", res, err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for z.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := z.calls.Load(); n != 2 {
		t.Fatalf("%d resolver calls 2.5 s before expiry, want a refresh", n)
	}
}
