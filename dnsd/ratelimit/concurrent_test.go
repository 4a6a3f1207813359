package ratelimit

import (
	"sync"
	"testing"
	"time"
)

func TestConcurrentFrozenClock(t *testing.T) {
	const (
		workers  = 8
		perWork  = 2000
		prefixes = 16
		burst    = 50
	)
	l, _ := newLimiter(Config{Rate: 10, Burst: burst})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWork {
				l.Check(v4Prefix((w + i) % prefixes))
			}
		})
	}
	wg.Go(func() { // a concurrent reader of the counters
		for range 100 {
			_ = l.Stats()
		}
	})
	wg.Wait()
	s := l.Stats()
	// With the clock frozen each prefix gets exactly its burst, however
	// the goroutines interleave.
	if s.Allowed != prefixes*burst {
		t.Errorf("allowed %d, want %d", s.Allowed, prefixes*burst)
	}
	if total := s.Allowed + s.Slipped + s.Dropped; total != workers*perWork {
		t.Errorf("counted %d checks, want %d", total, workers*perWork)
	}
	if s.Tracked != prefixes {
		t.Errorf("tracked %d, want %d", s.Tracked, prefixes)
	}
}

func TestConcurrentMovingClockAndEviction(t *testing.T) {
	const (
		workers = 8
		perWork = 5000
	)
	l, c := newLimiter(Config{Rate: 100, MaxTracked: 500})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWork {
				if w%2 == 0 {
					l.Check(v4Prefix(i % 8)) // hot prefixes
				} else {
					l.Check(v6Prefix(w*perWork + i)) // a flood of new ones
				}
				if i%100 == 0 {
					c.Advance(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	s := l.Stats()
	if total := s.Allowed + s.Slipped + s.Dropped; total != workers*perWork {
		t.Errorf("counted %d checks, want %d", total, workers*perWork)
	}
	if s.Tracked > 500 {
		t.Errorf("tracked %d, over MaxTracked 500", s.Tracked)
	}
	checkShards(t, l, 500)
}
