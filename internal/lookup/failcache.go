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
// A failure is an error, or an answer that is one (SERVFAIL, REFUSED: see
// Failure), which is given again. The cache step above still serves a
// stale answer when it has one: a failure answer is not stored over it, so
// without this step every query would ask again. A lookup that merely ran
// out of its client's budget is not a failure: the shared call below may
// still succeed and fill the cache.
type failStep struct {
	next    Handler
	ttl     time.Duration
	now     func() time.Time
	metrics *metrics

	mu     sync.Mutex
	failed *simplelru.LRU[string, failure]
}

// failure is a question's recent failure.
type failure struct {
	until time.Time
	res   *Result // the failure answer to give again; nil for an error
}

func newFailStep(next Handler, ttl time.Duration, size int, now func() time.Time, m *metrics) *failStep {
	lru, err := simplelru.NewLRU[string, failure](size, nil)
	if err != nil {
		panic(fmt.Sprintf("lookup: failure cache size %d: %v", size, err))
	}
	return &failStep{next: next, ttl: ttl, now: now, metrics: m, failed: lru}
}

func (s *failStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	return s.lookupUntil(ctx, q, time.Time{})
}

func (s *failStep) lookupUntil(ctx context.Context, q *dnsmsg.Query, until time.Time) (*Result, error) {
	s.mu.Lock()
	f, ok := s.failed.Get(q.Key)
	now := s.now()
	if ok && !now.Before(f.until) {
		s.failed.Remove(q.Key)
		ok = false
	}
	s.mu.Unlock()
	if ok {
		s.metrics.failCached.Inc()
		if f.res != nil {
			again := *f.res
			again.Now, again.cacheable = now, false
			return &again, nil
		}
		return nil, fmt.Errorf("%w: %w", ErrResolver, errRecentFailure)
	}
	res, err := lookupUntil(s.next, ctx, q, until)
	switch {
	case err != nil && !errors.Is(err, ErrTimeout):
		s.remember(q.Key, failure{})
	case err == nil && Failure(res.Entry):
		s.remember(q.Key, failure{res: res})
	}
	return res, err
}

// remember records f for key, failed until the failure TTL from now.
func (s *failStep) remember(key string, f failure) {
	f.until = s.now().Add(s.ttl)
	s.mu.Lock()
	s.failed.Add(key, f)
	s.mu.Unlock()
}
