package cache

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Evictions counts the entries pushed out by either bound, and nothing
// else: replacing a key, deleting, purging and expiring do not count.
func TestMemoryEvictions(t *testing.T) {
	clk := newFakeClock()
	e := testEntry(clk.Now(), time.Minute, time.Hour, 200)
	cost := memCost("k0", e)
	m := NewMemory(MemoryConfig{MaxEntries: 3, MaxBytes: 3*cost + cost/2, Now: clk.Now})
	for i := range 3 {
		mustSet(t, m, fmt.Sprint("k", i), e)
	}
	mustSet(t, m, "k0", e) // a replacement
	if n := m.Evictions(); n != 0 {
		t.Fatalf("Evictions = %d before either bound was reached", n)
	}
	mustSet(t, m, "k3", e) // the entry bound
	if n := m.Evictions(); n != 1 {
		t.Fatalf("Evictions = %d after one entry over the bound, want 1", n)
	}
	big := testEntry(clk.Now(), time.Minute, time.Hour, int(cost)) // the byte bound: two go
	mustSet(t, m, "big", big)
	if n := m.Evictions(); n != 3 {
		t.Fatalf("Evictions = %d after a big entry, want 3", n)
	}
	if err := m.Delete(context.Background(), "big"); err != nil {
		t.Fatal(err)
	}
	m.Purge()
	clk.Advance(2 * time.Hour)
	mustMiss(t, m, "k3")
	if n := m.Evictions(); n != 3 {
		t.Errorf("Evictions = %d after delete, purge and expiry, want 3", n)
	}
}
