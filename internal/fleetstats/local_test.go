package fleetstats

import (
	"math"
	"testing"
	"time"
)

// fakeL1 is an in-process cache of fixed size.
type fakeL1 struct {
	n     int
	bytes int64
	ev    uint64
}

func (f fakeL1) Len() int          { return f.n }
func (f fakeL1) Bytes() int64      { return f.bytes }
func (f fakeL1) Evictions() uint64 { return f.ev }

// Local's counters count since the start; its rates, recent hit ratio and
// quantiles cover about the last Window, from the readings Sample keeps.
func TestLocalWindow(t *testing.T) {
	clk := newFakeClock()
	m := newChainMetrics()
	l := NewLocal(LocalConfig{
		ID: "host:1", Kind: "dnsd", Gatherer: m.reg, Window: time.Minute, Now: clk.Now,
		L1: fakeL1{n: 7, bytes: 4096, ev: 3}, L1MaxEntries: 100, L1MaxBytes: 1 << 20,
	})
	if l.Step() != 5*time.Second {
		t.Fatalf("Step = %v, want 5s", l.Step())
	}
	// The first minute: 600 queries, all misses at 20 ms.
	for range 12 {
		clk.Advance(5 * time.Second)
		m.add(0, 0, 50, 0, 0)
		for range 50 {
			m.duration.WithLabelValues("resolver").Observe(0.020)
		}
		if err := l.Sample(); err != nil {
			t.Fatal(err)
		}
	}
	p, err := l.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "host:1" || p.Kind != "dnsd" || p.Queries != 600 || p.Misses != 600 || p.WindowSeconds != 60 ||
		p.QPS != 10 || p.HitRatio == nil || *p.HitRatio != 0 {
		t.Fatalf("after a minute of misses: %+v", p)
	}
	if p.P50Ms <= 10 || p.P50Ms > 25 {
		t.Errorf("p50 %v ms, want within the 10-25 ms bucket", p.P50Ms)
	}
	if p.L1 == nil || *p.L1 != (L1Stats{Entries: 7, Bytes: 4096, MaxEntries: 100, MaxBytes: 1 << 20, Evictions: 3}) {
		t.Errorf("L1 %+v", p.L1)
	}
	// The next minute: 1200 L1 hits at 0.1 ms, sampled; the misses of the
	// first minute leave the window, not the totals.
	for range 12 {
		clk.Advance(5 * time.Second)
		m.add(100, 0, 0, 0, 0)
		for range 100 {
			m.duration.WithLabelValues("l1").Observe(0.0001)
		}
		_ = l.Sample()
	}
	p, _ = l.Read(t.Context())
	if p.Queries != 1800 || p.L1Hits != 1200 || math.Abs(*p.HitRatio-2.0/3) > 1e-9 {
		t.Errorf("totals after two minutes: %+v", p)
	}
	if p.WindowSeconds != 60 || p.QPS != 20 || p.RecentHitRatio == nil || *p.RecentHitRatio != 1 {
		t.Errorf("window after two minutes: %v s, %v qps, recent hit ratio %v", p.WindowSeconds, p.QPS, p.RecentHitRatio)
	}
	if p.P99Ms > 0.1 || p.P99Ms <= 0.05 {
		t.Errorf("p99 %v ms, want within the 0.05-0.1 ms bucket (no miss left in the window)", p.P99Ms)
	}
	if len(l.samples) > localSteps+1 {
		t.Errorf("%d readings kept, want at most %d", len(l.samples), localSteps+1)
	}
}

// Without samples a read covers the time since the start (or since the
// last reading kept), and says so; with no L1 it reports none.
func TestLocalUnsampled(t *testing.T) {
	clk := newFakeClock()
	m := newChainMetrics()
	l := NewLocal(LocalConfig{Gatherer: m.reg, Now: clk.Now})
	p, err := l.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if p.Queries != 0 || p.HitRatio != nil || p.RecentHitRatio != nil || p.QPS != 0 || p.P99Ms != 0 || p.L1 != nil || p.ID == "" {
		t.Errorf("before any query: %+v", p)
	}
	clk.Advance(10 * time.Minute)
	m.add(30, 30, 0, 0, 0)
	p, _ = l.Read(t.Context())
	if p.WindowSeconds != 600 || p.QPS != 0.1 || *p.RecentHitRatio != 1 {
		t.Errorf("ten minutes unsampled: %v s, %v qps, %v", p.WindowSeconds, p.QPS, *p.RecentHitRatio)
	}
	// That read was kept: the next one, a minute on, covers that minute.
	clk.Advance(time.Minute)
	m.add(0, 0, 6, 0, 0)
	p, _ = l.Read(t.Context())
	if p.WindowSeconds != 60 || p.QPS != 0.1 || *p.RecentHitRatio != 0 {
		t.Errorf("a minute after a read: %v s, %v qps, %v", p.WindowSeconds, p.QPS, *p.RecentHitRatio)
	}
}
