package lookup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// errRecentFailure is wrapped when the failure cache answers for the
// resolver.
var errRecentFailure = errors.New("resolver failed for this name moments ago")

// failStep remembers, for a few seconds, the questions the resolver failed
// to answer, and fails them again at once instead of asking again for every
// query (RFC 8767 §5's failure recheck; RFC 2308 §7.1 bounds it to minutes).
// The cache step above still serves a stale answer when it has one. A
// lookup that merely ran out of its client's budget is not a failure: the
// shared call below may still succeed and fill the cache.
type failStep struct {
	next    Handler
	ttl     time.Duration
	now     func() time.Time
	metrics *metrics

	mu     sync.Mutex
	failed *simplelru.LRU[string, time.Time] // key → failed until
}

func newFailStep(next Handler, ttl time.Duration, size int, now func() time.Time, m *metrics) *failStep {
	lru, err := simplelru.NewLRU[string, time.Time](size, nil)
	if err != nil {
		panic(fmt.Sprintf("lookup: failure cache size %d: %v", size, err))
	}
	return &failStep{next: next, ttl: ttl, now: now, metrics: m, failed: lru}
}

func (s *failStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	s.mu.Lock()
	until, ok := s.failed.Get(q.Key)
	if ok && !s.now().Before(until) {
		s.failed.Remove(q.Key)
		ok = false
	}
	s.mu.Unlock()
	if ok {
		s.metrics.failCached.Inc()
		return nil, fmt.Errorf("%w: %w", ErrResolver, errRecentFailure)
	}
	res, err := s.next.Lookup(ctx, q)
	if err != nil && !errors.Is(err, ErrTimeout) {
		s.mu.Lock()
		s.failed.Add(q.Key, s.now().Add(s.ttl))
		s.mu.Unlock()
	}
	return res, err
}
