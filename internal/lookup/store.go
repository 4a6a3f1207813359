package lookup

import (
	"context"
	"log/slog"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// storeStep writes a cacheable answer from the resolver into the cache. A
// write that fails is counted and logged; the answer is served regardless.
// A failure (SERVFAIL) is written only where the key holds no entry, fresh
// or stale, in either tier, so that it never replaces good data that
// serve-stale can still give (a store that cannot write so does not get
// it at all).
// With async set (write-behind, a store that can write without waiting),
// the answer goes out while the shared tier's write is on its way, batched
// with others, rather than after a round trip to it.
type storeStep struct {
	next    Handler
	store   Store
	async   asyncStore // nil: every write is waited for
	log     *slog.Logger
	metrics *metrics
}

// asyncStore is a Store that can write without waiting for the shared
// tier (cache.Layered).
type asyncStore interface {
	SetAsync(ctx context.Context, key string, e *cache.Entry, done func(error)) bool
}

func (s *storeStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	res, err := s.next.Lookup(ctx, q)
	if err != nil || res.Entry.TTL == 0 || !res.cacheable {
		return res, err
	}
	key := q.Key
	if Failure(res.Entry) {
		if a, ok := s.store.(addStore); ok {
			_, err := a.Add(ctx, key, res.Entry)
			s.written(key, err)
		}
		return res, nil
	}
	if s.async != nil && s.async.SetAsync(ctx, key, res.Entry, func(err error) { s.written(key, err) }) {
		return res, nil
	}
	s.written(key, s.store.Set(ctx, key, res.Entry))
	return res, nil
}

// addStore is a Store that can write an entry only where there is none
// (cache.Layered).
type addStore interface {
	Add(ctx context.Context, key string, e *cache.Entry) (bool, error)
}

// written counts and logs a write that failed.
func (s *storeStep) written(key string, err error) {
	if err != nil {
		s.metrics.cacheErrors.WithLabelValues("set").Inc()
		s.log.Debug("cache write failed", "key", key, "err", err)
	}
}
