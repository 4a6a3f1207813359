package lookup

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// prefetcher refreshes popular entries before they expire, so popular
// names never miss: a cache hit past its refresh time (cache.Entry.RefreshAt),
// on an entry asked for at least minHits times, starts one background
// lookup that skips the cache read and writes a fresh entry. Each entry is
// refreshed at most once; refreshes run on a bounded number of goroutines
// and are dropped, not queued, when all are busy. The refreshes run under
// the prefetcher's own context, which close cancels.
type prefetcher struct {
	refresh Handler // the chain below the cache read
	minHits int
	timeout time.Duration
	metrics *metrics
	slots   chan struct{}
	hits    hitTable

	ctx    context.Context // ends at close
	cancel context.CancelFunc
	wg     sync.WaitGroup // refreshes in flight

	mu     sync.Mutex
	closed bool
}

func newPrefetcher(refresh Handler, minHits, workers, tracked int, timeout time.Duration, m *metrics) *prefetcher {
	ctx, cancel := context.WithCancel(context.Background())
	return &prefetcher{
		refresh: refresh, minHits: minHits, timeout: timeout,
		metrics: m, slots: make(chan struct{}, max(workers, 1)), hits: newHitTable(tracked),
		ctx: ctx, cancel: cancel,
	}
}

// hit counts a hit on q's entry and starts a refresh when it is due.
func (p *prefetcher) hit(q *dnsmsg.Query, res *Result) {
	e := res.Entry
	late := !res.Now.Before(e.RefreshAt())
	if p.hits.count(q.Key, e.StoredAt, late, p.minHits) && e.TTL > 0 {
		p.start(q)
	}
}

// hitTable counts the hits on each stored version of an entry (its key
// and StoredAt) in a fixed array of slots, one atomic word each, so that
// counting a hit takes no lock and no allocation: every cache hit counts
// one. A slot holds a tag of the version, its hit count and whether its
// refresh was started. A version whose slot another takes (a collision)
// starts counting again, as one evicted from a table of recent keys
// would; the table has at least twice as many slots as entries it is
// meant to track, and its hash is seeded at random, so that no one can
// choose names that keep an entry from being refreshed.
type hitTable struct {
	seed  maphash.Seed
	mask  uint64
	slots []atomic.Uint64
}

const (
	hitTagShift  = 32        // the version's tag is the slot's top half
	hitRefreshed = 1         // the lowest bit: a refresh was started
	hitCountMax  = 1<<31 - 1 // the hits counted, in the bits between
)

func newHitTable(tracked int) hitTable {
	n := 1
	for n < 2*tracked {
		n <<= 1
	}
	return hitTable{seed: maphash.MakeSeed(), mask: uint64(n - 1), slots: make([]atomic.Uint64, n)}
}

// count counts one hit on the version of key stored at storedAt and
// reports whether this hit is the one to start its refresh: late (past
// its refresh time), with at least minHits hits counted, and none started
// before. Of hits counted at once, at most one gets true.
func (t *hitTable) count(key string, storedAt time.Time, late bool, minHits int) bool {
	h := maphash.String(t.seed, key)
	tag := uint64(uint32(h>>hitTagShift)^uint32(mix(uint64(storedAt.UnixNano())))) << hitTagShift
	slot := &t.slots[h&t.mask]
	for {
		old := slot.Load()
		n, refreshed := uint64(1), uint64(0)
		if old&^(1<<hitTagShift-1) == tag {
			n = min(old>>1&hitCountMax+1, hitCountMax)
			refreshed = old & hitRefreshed
		}
		fire := late && refreshed == 0 && n >= uint64(minHits)
		if fire {
			refreshed = hitRefreshed
		}
		if slot.CompareAndSwap(old, tag|n<<1|refreshed) {
			return fire
		}
	}
}

// mix returns the high half of x times 2^64 / φ (Fibonacci hashing):
// StoredAt values a few nanoseconds apart get unrelated tags.
func mix(x uint64) uint64 { return x * 0x9E3779B97F4A7C15 >> 32 }

func (p *prefetcher) start(q *dnsmsg.Query) {
	select {
	case p.slots <- struct{}{}:
	default:
		p.metrics.prefetch.WithLabelValues("busy").Inc()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.slots
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	qc := *q
	go func() {
		defer func() { <-p.slots; p.wg.Done() }()
		ctx, cancel := context.WithTimeout(withRefresh(p.ctx), p.timeout)
		defer cancel()
		// A failure answer is not stored over the entry: the refresh
		// failed, and the entry is served until it expires.
		if res, err := p.refresh.Lookup(ctx, &qc); err != nil || Failure(res.Entry) {
			p.metrics.prefetch.WithLabelValues("failed").Inc()
			return
		}
		p.metrics.prefetch.WithLabelValues("refreshed").Inc()
	}()
}

// close stops starting refreshes, cancels those in flight and waits for
// them.
func (p *prefetcher) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}
