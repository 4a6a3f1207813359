package lookup

import (
	"context"
	"log/slog"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// storeStep writes a cacheable answer from the resolver into the cache. A
// write that fails is counted and logged; the answer is served regardless.
type storeStep struct {
	next    Handler
	store   Store
	log     *slog.Logger
	metrics *metrics
}

func (s *storeStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	res, err := s.next.Lookup(ctx, q)
	if err != nil || res.Entry.TTL == 0 || !res.cacheable {
		return res, err
	}
	if err := s.store.Set(ctx, q.Key, res.Entry); err != nil {
		s.metrics.cacheErrors.WithLabelValues("set").Inc()
		s.log.Debug("cache write failed", "key", q.Key, "err", err)
	}
	return res, nil
}
