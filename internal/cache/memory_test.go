package cache

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

func memCost(key string, e *Entry) int64 { return int64(len(key) + e.Size() + memEntryOverhead) }

func mustGet(t *testing.T, tier Tier, key string) *Entry {
	t.Helper()
	e, err := tier.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return e
}

func mustMiss(t *testing.T, tier Tier, key string) {
	t.Helper()
	e, err := tier.Get(context.Background(), key)
	if !errors.Is(err, ErrMiss) {
		t.Fatalf("Get(%s) = %v, %v; want ErrMiss", key, e, err)
	}
}

func mustSet(t *testing.T, tier Tier, key string, e *Entry) {
	t.Helper()
	if err := tier.Set(context.Background(), key, e); err != nil {
		t.Fatalf("Set(%s): %v", key, err)
	}
}

func TestMemoryGetSet(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(MemoryConfig{MaxEntries: 10, Now: clk.Now})
	mustMiss(t, m, "a")
	e := testEntry(clk.Now(), time.Minute, time.Hour, 40)
	mustSet(t, m, "a", e)
	if got := mustGet(t, m, "a"); got != e {
		t.Error("Get does not return the stored pointer")
	}
	if m.Len() != 1 || m.Bytes() != memCost("a", e) {
		t.Errorf("Len %d Bytes %d, want 1 %d", m.Len(), m.Bytes(), memCost("a", e))
	}
	// Replacing a key counts its bytes once.
	e2 := testEntry(clk.Now(), time.Minute, time.Hour, 100)
	mustSet(t, m, "a", e2)
	if got := mustGet(t, m, "a"); got != e2 {
		t.Error("replaced entry not returned")
	}
	if m.Len() != 1 || m.Bytes() != memCost("a", e2) {
		t.Errorf("after replace: Len %d Bytes %d, want 1 %d", m.Len(), m.Bytes(), memCost("a", e2))
	}
}

func TestMemoryEntryBound(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(MemoryConfig{MaxEntries: 3, MaxBytes: 1 << 30, Now: clk.Now})
	for i := range 10 {
		mustSet(t, m, fmt.Sprint("k", i), testEntry(clk.Now(), time.Minute, time.Hour, 20))
		if m.Len() > 3 {
			t.Fatalf("after %d sets Len = %d > 3", i+1, m.Len())
		}
	}
	if m.Len() != 3 {
		t.Errorf("Len = %d, want 3", m.Len())
	}
	for _, k := range []string{"k7", "k8", "k9"} {
		mustGet(t, m, k)
	}
	mustMiss(t, m, "k6")
}

func TestMemoryByteBound(t *testing.T) {
	clk := newFakeClock()
	e := testEntry(clk.Now(), time.Minute, time.Hour, 200)
	cost := memCost("k0", e)
	m := NewMemory(MemoryConfig{MaxEntries: 100, MaxBytes: 3*cost + cost/2, Now: clk.Now})
	for i := range 3 {
		mustSet(t, m, fmt.Sprint("k", i), e)
	}
	if m.Len() != 3 || m.Bytes() != 3*cost {
		t.Fatalf("Len %d Bytes %d, want 3 %d", m.Len(), m.Bytes(), 3*cost)
	}
	mustSet(t, m, "k3", e)
	if m.Len() != 3 || m.Bytes() != 3*cost {
		t.Errorf("after 4th: Len %d Bytes %d, want 3 %d", m.Len(), m.Bytes(), 3*cost)
	}
	mustMiss(t, m, "k0")
	// A big entry evicts as many as it needs.
	big := testEntry(clk.Now(), time.Minute, time.Hour, int(cost)) // costs about 1.6 entries
	mustSet(t, m, "big", big)
	if m.Bytes() > 3*cost+cost/2 {
		t.Errorf("Bytes %d over the bound %d", m.Bytes(), 3*cost+cost/2)
	}
	mustGet(t, m, "big")
	mustGet(t, m, "k3")
	mustMiss(t, m, "k1")
	mustMiss(t, m, "k2")
	// An entry larger than the whole bound is not stored, and replaces
	// nothing stale: the key's old entry is gone too.
	huge := testEntry(clk.Now(), time.Minute, time.Hour, int(4*cost))
	mustSet(t, m, "k3", huge)
	mustMiss(t, m, "k3")
	mustGet(t, m, "big")
}

func TestMemoryLRUOrder(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(MemoryConfig{MaxEntries: 3, Now: clk.Now})
	e := testEntry(clk.Now(), time.Minute, time.Hour, 20)
	for _, k := range []string{"a", "b", "c"} {
		mustSet(t, m, k, e)
	}
	mustGet(t, m, "a") // a is now the most recent; b the least
	mustSet(t, m, "d", e)
	mustMiss(t, m, "b")
	mustGet(t, m, "c") // order now a, d, c (oldest first)
	mustSet(t, m, "e", e)
	mustMiss(t, m, "a")
	for _, k := range []string{"c", "d", "e"} {
		mustGet(t, m, k)
	}
}

func TestMemoryStaleUntil(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(MemoryConfig{Now: clk.Now})
	e := testEntry(clk.Now(), 5*time.Second, 10*time.Second, 20)
	mustSet(t, m, "k", e)
	clk.Advance(9 * time.Second) // stale but usable: still held
	mustGet(t, m, "k")
	clk.Advance(time.Second) // at StaleUntil
	mustMiss(t, m, "k")
	if m.Len() != 0 || m.Bytes() != 0 {
		t.Errorf("expired entry not removed: Len %d Bytes %d", m.Len(), m.Bytes())
	}
	// Setting an entry already past StaleUntil does nothing.
	mustSet(t, m, "old", e)
	mustMiss(t, m, "old")
	if m.Len() != 0 {
		t.Errorf("Len = %d after setting an expired entry", m.Len())
	}
}

func TestMemoryMaxAge(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(MemoryConfig{MaxAge: 5 * time.Second, Now: clk.Now})
	long := testEntry(clk.Now(), time.Hour, 2*time.Hour, 20)
	short := testEntry(clk.Now(), time.Second, 3*time.Second, 20)
	mustSet(t, m, "long", long)
	mustSet(t, m, "short", short)
	clk.Advance(3 * time.Second)
	mustMiss(t, m, "short") // its own StaleUntil comes before the cap
	mustGet(t, m, "long")
	clk.Advance(time.Second + 999*time.Millisecond)
	mustGet(t, m, "long")
	clk.Advance(time.Millisecond) // 5s after Set
	mustMiss(t, m, "long")
	// The cap counts from Set, not from StoredAt: an entry stored long ago
	// (copied from Redis) gets a full MaxAge.
	old := testEntry(clk.Now().Add(-time.Hour), 2*time.Hour, 3*time.Hour, 20)
	mustSet(t, m, "old", old)
	clk.Advance(4 * time.Second)
	mustGet(t, m, "old")
	clk.Advance(time.Second)
	mustMiss(t, m, "old")
}

func TestMemoryDeletePurge(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(MemoryConfig{Now: clk.Now})
	e := testEntry(clk.Now(), time.Minute, time.Hour, 20)
	for _, k := range []string{"a", "b", "c", "d"} {
		mustSet(t, m, k, e)
	}
	if err := m.Delete(context.Background(), "a", "c", "absent"); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, m, "a")
	mustMiss(t, m, "c")
	mustGet(t, m, "b")
	if m.Len() != 2 || m.Bytes() != 2*memCost("b", e) {
		t.Errorf("after Delete: Len %d Bytes %d", m.Len(), m.Bytes())
	}
	m.Purge()
	mustMiss(t, m, "b")
	if m.Len() != 0 || m.Bytes() != 0 {
		t.Errorf("after Purge: Len %d Bytes %d", m.Len(), m.Bytes())
	}
}

// TestMemoryShardedBounds checks that the segments' shares add up to the
// bounds: the whole never holds more than asked, and fills to near it.
func TestMemoryShardedBounds(t *testing.T) {
	clk := newFakeClock()
	e := testEntry(clk.Now(), time.Minute, time.Hour, 100)

	m := NewMemory(MemoryConfig{MaxEntries: 1000, MaxBytes: 1 << 30, Now: clk.Now})
	if len(m.shards) < 2 {
		t.Fatalf("%d segments, want several", len(m.shards))
	}
	for i := range 5000 {
		mustSet(t, m, fmt.Sprintf("dns:{n%d.example.}:A:IN", i), e)
		if m.Len() > 1000 {
			t.Fatalf("Len %d > 1000", m.Len())
		}
	}
	if m.Len() < 900 {
		t.Errorf("Len %d: segments fill to well under the bound", m.Len())
	}

	const maxBytes = 200_000
	m = NewMemory(MemoryConfig{MaxEntries: 100_000, MaxBytes: maxBytes, Now: clk.Now})
	if len(m.shards) != maxMemShards {
		t.Fatalf("%d segments, want %d", len(m.shards), maxMemShards)
	}
	for i := range 5000 {
		mustSet(t, m, fmt.Sprintf("dns:{n%d.example.}:A:IN", i), e)
		if m.Bytes() > maxBytes {
			t.Fatalf("Bytes %d > %d", m.Bytes(), maxBytes)
		}
	}
	if m.Bytes() < maxBytes*8/10 {
		t.Errorf("Bytes %d: segments fill to well under the bound", m.Bytes())
	}
}

func TestMemoryConcurrent(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(MemoryConfig{MaxEntries: 2000, MaxBytes: 300_000, MaxAge: time.Minute, Now: clk.Now})
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			e := testEntry(clk.Now(), time.Minute, time.Hour, 50+g*30)
			for i := range 3000 {
				k := fmt.Sprintf("k%d", (i*7+g)%4000)
				switch i % 4 {
				case 0, 1:
					_ = m.Set(ctx, k, e)
				case 2:
					_, _ = m.Get(ctx, k)
				case 3:
					_ = m.Delete(ctx, k)
				}
			}
		})
	}
	wg.Wait()
	if m.Len() > 2000 || m.Bytes() > 300_000 || m.Bytes() < 0 {
		t.Errorf("bounds broken: Len %d Bytes %d", m.Len(), m.Bytes())
	}
	m.Purge()
	if m.Bytes() != 0 {
		t.Errorf("byte accounting drifted: %d after Purge", m.Bytes())
	}
}

func TestMemoryShares(t *testing.T) {
	for _, c := range []struct {
		cfg            MemoryConfig
		segments       int
		entries, bytes int64
	}{
		{MemoryConfig{}, maxMemShards, DefaultMemoryEntries, DefaultMemoryBytes},
		{MemoryConfig{MaxEntries: 3, MaxBytes: 1000}, 1, 3, 1000},
		{MemoryConfig{MaxEntries: 1000, MaxBytes: 1001}, 8, 1000, 1001},
		{MemoryConfig{MaxEntries: 100_003, MaxBytes: 77_777}, maxMemShards, 100_003, 77_777},
	} {
		m := NewMemory(c.cfg)
		var entries, bytes int64
		for _, s := range m.shards {
			entries += int64(s.maxEntries)
			bytes += s.maxBytes
		}
		if len(m.shards) != c.segments || entries != c.entries || bytes != c.bytes {
			t.Errorf("%+v: %d segments, shares %d entries %d bytes; want %d, %d, %d",
				c.cfg, len(m.shards), entries, bytes, c.segments, c.entries, c.bytes)
		}
	}
	m := NewMemory(MemoryConfig{})
	mustSet(t, m, "k", testEntry(time.Now(), time.Minute, time.Hour, 20)) // real clock
	mustGet(t, m, "k")
}

func BenchmarkMemoryGet(b *testing.B) {
	m := NewMemory(MemoryConfig{MaxEntries: 100_000})
	now := time.Now()
	const n = 10_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("dns:{www%d.example.com.}:A:IN", i)
		_ = m.Set(context.Background(), keys[i], testEntry(now, time.Hour, 2*time.Hour, 120))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := 0
		for pb.Next() {
			if _, err := m.Get(ctx, keys[i%n]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// The byte bound counts what entries really take: the Go heap that a full
// L1 adds, after GC, is within a quarter of what Bytes reports. Entries
// sized as real answers are (a one-record A to a long TXT), each with
// its own key and message, as a Redis hit or a resolver answer stores them.
func TestMemoryBytesMatchHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("fills an L1 of 20000 entries")
	}
	const n = 20_000
	now := time.Now()
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapInuse)
	}
	sizes := []int{49, 65, 89, 102, 120, 283}
	keys := make([]string, n)
	entries := make([]*Entry, n)
	for i := range n {
		keys[i] = fmt.Sprintf("dns:{host%d.zone%d.example.}:A:IN", i, i%97)
		entries[i] = testEntry(now, time.Hour, 2*time.Hour, sizes[i%len(sizes)])
	}
	// What the entries themselves take is in the heap before the L1 is
	// made, as it would be before a Set: count it in.
	var own int64
	for i := range n {
		own += int64(len(keys[i]) + len(entries[i].Msg) + 2*len(entries[i].Offsets) + 112)
	}
	before := heap()
	m := NewMemory(MemoryConfig{MaxEntries: 2 * n, MaxBytes: 1 << 40})
	for i := range n {
		mustSet(t, m, keys[i], entries[i])
	}
	grown := heap() - before
	runtime.KeepAlive(m)
	if m.Len() != n {
		t.Fatalf("L1 holds %d of %d entries", m.Len(), n)
	}
	real := grown + own
	ratio := float64(m.Bytes()) / float64(real)
	t.Logf("heap: %d B per entry (%d the L1's own), counted: %d B per entry (%.2f×)",
		real/n, grown/n, m.Bytes()/n, ratio)
	if ratio < 0.75 || ratio > 1.25 {
		t.Errorf("the L1 counts %.2f× the heap its entries take (want within 0.75-1.25×): memEntryOverhead is off", ratio)
	}
}
