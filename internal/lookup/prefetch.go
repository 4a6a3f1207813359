package lookup

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

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

	ctx    context.Context // ends at close
	cancel context.CancelFunc
	wg     sync.WaitGroup // refreshes in flight

	mu     sync.Mutex
	closed bool
	hits   *simplelru.LRU[string, *hitCount]
}

// hitCount counts hits on one stored version of an entry (its StoredAt).
type hitCount struct {
	storedAt  time.Time
	n         int
	refreshed bool
}

func newPrefetcher(refresh Handler, minHits, workers, tracked int, timeout time.Duration, m *metrics) *prefetcher {
	lru, _ := simplelru.NewLRU[string, *hitCount](max(tracked, 1), nil)
	ctx, cancel := context.WithCancel(context.Background())
	return &prefetcher{
		refresh: refresh, minHits: minHits, timeout: timeout,
		metrics: m, slots: make(chan struct{}, max(workers, 1)), hits: lru,
		ctx: ctx, cancel: cancel,
	}
}

// hit counts a hit on q's entry and starts a refresh when it is due.
func (p *prefetcher) hit(q *dnsmsg.Query, res *Result) {
	if p.due(q.Key, res) {
		p.start(q)
	}
}

// due counts the hit and reports whether this hit should start a refresh.
func (p *prefetcher) due(key string, res *Result) bool {
	e := res.Entry
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.hits.Get(key)
	switch {
	case !ok:
		c = &hitCount{storedAt: e.StoredAt}
		p.hits.Add(key, c)
	case !c.storedAt.Equal(e.StoredAt):
		*c = hitCount{storedAt: e.StoredAt}
	}
	c.n++
	late := !res.Now.Before(e.RefreshAt())
	fire := late && !c.refreshed && c.n >= p.minHits && e.TTL > 0 && !p.closed
	if fire {
		c.refreshed = true
	}
	return fire
}

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
