package lookup

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// prefetchStep refreshes popular entries before they expire, so popular
// names never miss: a cache hit past its refresh time (cache.Entry.RefreshAt), on an entry
// asked for at least minHits times, starts one background lookup that skips
// the cache read and writes a fresh entry. Each entry is refreshed at most
// once; refreshes run on a bounded number of goroutines and are dropped,
// not queued, when all are busy.
type prefetchStep struct {
	next    Handler // the cache step
	refresh Handler // the chain below the cache read
	minHits int
	timeout time.Duration
	now     func() time.Time
	metrics *metrics
	slots   chan struct{}

	mu   sync.Mutex
	hits *simplelru.LRU[string, *hitCount]
}

// hitCount counts hits on one stored version of an entry (its StoredAt).
type hitCount struct {
	storedAt  time.Time
	n         int
	refreshed bool
}

func newPrefetchStep(next, refresh Handler, minHits, workers, tracked int, timeout time.Duration, now func() time.Time, m *metrics) *prefetchStep {
	lru, _ := simplelru.NewLRU[string, *hitCount](max(tracked, 1), nil)
	return &prefetchStep{
		next: next, refresh: refresh, minHits: minHits, timeout: timeout, now: now,
		metrics: m, slots: make(chan struct{}, max(workers, 1)), hits: lru,
	}
}

func (s *prefetchStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	res, err := s.next.Lookup(ctx, q)
	if err != nil || (res.Source != SourceL1 && res.Source != SourceRedis) {
		return res, err
	}
	if s.due(q.Key, res) {
		s.start(q)
	}
	return res, nil
}

// due counts the hit and reports whether this hit should start a refresh.
func (s *prefetchStep) due(key string, res *Result) bool {
	e := res.Entry
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.hits.Get(key)
	switch {
	case !ok:
		c = &hitCount{storedAt: e.StoredAt}
		s.hits.Add(key, c)
	case !c.storedAt.Equal(e.StoredAt):
		*c = hitCount{storedAt: e.StoredAt}
	}
	c.n++
	late := !res.Now.Before(e.RefreshAt())
	fire := late && !c.refreshed && c.n >= s.minHits && e.TTL > 0
	if fire {
		c.refreshed = true
	}
	return fire
}

func (s *prefetchStep) start(q *dnsmsg.Query) {
	select {
	case s.slots <- struct{}{}:
	default:
		s.metrics.prefetch.WithLabelValues("busy").Inc()
		return
	}
	qc := *q
	go func() {
		defer func() { <-s.slots }()
		ctx, cancel := context.WithTimeout(withRefresh(context.Background()), s.timeout)
		defer cancel()
		// A failure answer is not stored over the entry: the refresh
		// failed, and the entry is served until it expires.
		if res, err := s.refresh.Lookup(ctx, &qc); err != nil || Failure(res.Entry) {
			s.metrics.prefetch.WithLabelValues("failed").Inc()
			return
		}
		s.metrics.prefetch.WithLabelValues("refreshed").Inc()
	}()
}
