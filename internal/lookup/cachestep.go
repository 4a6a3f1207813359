package lookup

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// cacheStep answers from the cache tiers. A fresh entry is the answer. A
// stale one (past its TTL, inside its stale window) is held back and served
// only when the steps below fail or answer with a failure, SERVFAIL or
// REFUSED (RFC 8767). A stored failure is never served stale. A cache
// error is a miss.
type cacheStep struct {
	next    Handler
	store   Store
	l1      l1Reader // store's in-process tier, when it offers one
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics
}

func (s *cacheStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	var e *cache.Entry
	var src cache.Source
	var err error
	if bc, ok := ctx.(*budgetCtx); ok && bc.read != nil {
		e, src, err = bc.read.Entry, bc.read.Source, bc.read.Err // read and counted by lookupCached
	} else {
		e, src, err = s.store.Get(ctx, q.Key)
		s.countReadError(q.Key, err)
	}
	now := s.now()
	if err == nil && e.Fresh(now) {
		return &Result{Entry: e, Source: Source(src), Now: now}, nil
	}
	res, err := s.next.Lookup(ctx, q)
	if err == nil && !Failure(res.Entry) {
		return res, nil
	}
	if e != nil && !Failure(e) {
		if now = s.now(); e.Usable(now) {
			return &Result{Entry: e, Source: SourceStale, Now: now}, nil
		}
	}
	return res, err
}

// countReadError counts and logs a cache read that failed (not a miss).
func (s *cacheStep) countReadError(key string, err error) {
	if err != nil && !errors.Is(err, cache.ErrMiss) {
		s.metrics.cacheErrors.WithLabelValues("get").Inc()
		s.log.Debug("cache read failed", "key", key, "err", err)
	}
}
