package lookup

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHitTableCountsEachVersion(t *testing.T) {
	ht := newHitTable(16)
	v1 := time.Unix(1000, 0)
	// Early hits count, and never fire.
	for i := range 3 {
		if ht.count("a.test.|A", v1, false, 3) {
			t.Fatalf("early hit %d fired", i+1)
		}
	}
	if !ht.count("a.test.|A", v1, true, 3) {
		t.Fatal("a late hit after 3 early ones did not fire")
	}
	if ht.count("a.test.|A", v1, true, 3) {
		t.Fatal("a version fired twice")
	}
	// A new version (the refreshed entry) counts from the start again.
	v2 := v1.Add(time.Nanosecond)
	if ht.count("a.test.|A", v2, true, 3) {
		t.Fatal("a new version's first hit fired with minHits 3")
	}
	ht.count("a.test.|A", v2, false, 3)
	if !ht.count("a.test.|A", v2, true, 3) {
		t.Fatal("the new version's third hit did not fire")
	}
	// Another key has its own count.
	if ht.count("b.test.|A", v1, true, 2) {
		t.Fatal("another key's first hit fired with minHits 2")
	}
}

// Of many hits at once on a version past its refresh time, exactly one
// starts the refresh.
func TestHitTableFiresOnceUnderContention(t *testing.T) {
	ht := newHitTable(16)
	v := time.Unix(2000, 0)
	var fired atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if ht.count("hot.test.|A", v, true, 100) {
					fired.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := fired.Load(); n != 1 {
		t.Fatalf("%d hits fired, want 1", n)
	}
}

func BenchmarkPrefetchHit(b *testing.B) {
	ht := newHitTable(prefetchTracked)
	keys := make([]string, 20000)
	for i := range keys {
		keys[i] = "name" + string(rune('a'+i%26)) + time.Duration(i).String() + ".bench.example.|A"
	}
	v := time.Unix(3000, 0)
	i := 0
	for b.Loop() {
		ht.count(keys[i%len(keys)], v, false, 3)
		i++
	}
}
