package cache

import (
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// variants are the keys of name for a few types and flags.
func variants(name string) []string {
	return []string{
		dnsmsg.Key(name, dns.TypeA, dns.ClassINET, false, false),
		dnsmsg.Key(name, dns.TypeAAAA, dns.ClassINET, false, false),
		dnsmsg.Key(name, dns.TypeA, dns.ClassINET, true, true),
		dnsmsg.Key(name, dns.TypeTXT, dns.ClassCHAOS, false, true),
	}
}

// fill stores every variant of names in tier and returns the keys.
func fill(t *testing.T, tier Tier, now time.Time, names ...string) []string {
	t.Helper()
	var keys []string
	for _, n := range names {
		for _, k := range variants(n) {
			mustSet(t, tier, k, keyed(k, testEntry(now, time.Hour, 2*time.Hour, 40)))
			keys = append(keys, k)
		}
	}
	return keys
}

func memKeys(m *Memory) []string {
	var out []string
	for _, s := range m.shards {
		s.mu.Lock()
		out = append(out, s.lru.Keys()...)
		s.mu.Unlock()
	}
	slices.Sort(out)
	return out
}

func TestMemoryDeleteNameAndSuffix(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(MemoryConfig{MaxEntries: 1000, Now: clk.Now})
	under := []string{"example.com.", "www.example.com.", "a.b.example.com.", "*.example.com.", `a\\.example.com.`}
	outside := []string{"aexample.com.", `a\.example.com.`, "example.com.evil.", "com.", "example.org.", "www.example.com.}:x."}
	fill(t, m, clk.Now(), under...)
	keep := fill(t, m, clk.Now(), outside...)

	// One name: its variants only.
	if n := m.DeleteName("www.example.com."); n != 4 {
		t.Errorf("DeleteName removed %d, want 4", n)
	}
	for _, k := range variants("www.example.com.") {
		mustMiss(t, m, k)
	}
	mustGet(t, m, variants("www.example.com.}:x.")[0])
	if n := m.DeleteName("www.example.com."); n != 0 {
		t.Errorf("second DeleteName removed %d", n)
	}

	// A suffix: the rest of under, nothing outside.
	if n := m.Invalidate(Invalidation{ID: "x", Name: "example.com.", Suffix: true}); n != 4*(len(under)-1) {
		t.Errorf("suffix flush removed %d, want %d", n, 4*(len(under)-1))
	}
	if got := memKeys(m); !slices.Equal(got, slices.Sorted(slices.Values(keep))) {
		t.Errorf("after the suffix flush L1 holds\n%q\nwant\n%q", got, keep)
	}
	if n := m.DeleteSuffix("."); n != len(keep) || m.Len() != 0 || m.Bytes() != 0 {
		t.Errorf("flush of the root removed %d of %d; Len %d Bytes %d", n, len(keep), m.Len(), m.Bytes())
	}
}

func TestMemoryInspect(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(MemoryConfig{MaxEntries: 2, MaxAge: time.Minute, Now: clk.Now})
	e := testEntry(clk.Now(), time.Hour, 2*time.Hour, 40)
	mustSet(t, m, "a", e)
	mustSet(t, m, "b", e)
	ins, err := m.Inspect("a")
	if err != nil || ins.Entry != e || ins.Tier != SourceL1 || ins.Shard != "" || ins.Size != e.Size() || ins.Key != "a" {
		t.Fatalf("Inspect = %+v, %v", ins, err)
	}
	// Inspect does not count as use: "a" is still the oldest and goes first.
	mustSet(t, m, "c", e)
	if _, err := m.Inspect("a"); err != ErrMiss {
		t.Errorf("Inspect of the evicted key: %v", err)
	}
	clk.Advance(time.Minute)
	if _, err := m.Inspect("b"); err != ErrMiss {
		t.Errorf("Inspect past MaxAge: %v", err)
	}
}
