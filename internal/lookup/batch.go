package lookup

import (
	"context"
	"time"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// BatchHandler is a chain that can read the cache for several queries at
// once, so that the queries of one busy moment cost one cache read per
// Redis shard rather than one each, and no goroutine or timer each: the
// chain Build returns is one.
type BatchHandler interface {
	BudgetHandler
	// LookupCached reads the cache once for all of qs (each with Key and
	// Name set). Each query whose entry is fresh gets Hit and its Result,
	// with everything Lookup does for such a hit (metrics, prefetch or
	// the fleet's hit counter). It reports false, having done nothing,
	// when the cache cannot read a batch (see cache.Layered.GetMany).
	LookupCached(ctx context.Context, budget time.Duration, qs []*dnsmsg.Query, out []Cached) bool
	// LookupAfter is LookupBudget for a query LookupCached left
	// unanswered: it goes on from c's cache read, without reading again.
	LookupAfter(ctx context.Context, budget time.Duration, q *dnsmsg.Query, c *Cached) (*Result, error)
}

// Cached is one query's outcome of LookupCached.
type Cached struct {
	Hit    bool   // a fresh entry: Result is the answer
	Result Result // set when Hit
	read   cache.Got
}

var _ BatchHandler = (*metricsStep)(nil)

// batchStep is a step that can take part in LookupCached.
type batchStep interface {
	lookupCached(ctx context.Context, qs []*dnsmsg.Query, out []Cached) bool
}

// LookupCached answers the fresh hits among qs: see BatchHandler.
func (s *metricsStep) LookupCached(ctx context.Context, budget time.Duration, qs []*dnsmsg.Query, out []Cached) bool {
	if s.batch == nil {
		return false
	}
	start := time.Now()
	if !s.batch.lookupCached(withBudget(ctx, budget, nil), qs, out) {
		return false
	}
	took := time.Since(start).Seconds()
	for i := range out {
		if out[i].Hit {
			s.count(&out[i].Result, took)
		}
	}
	return true
}

// LookupAfter goes on with a query LookupCached did not answer.
func (s *metricsStep) LookupAfter(ctx context.Context, budget time.Duration, q *dnsmsg.Query, c *Cached) (*Result, error) {
	var read *cache.Got
	if c.read.Entry != nil || c.read.Err != nil { // else not from LookupCached: read again
		read = &c.read
	}
	return s.Lookup(withBudget(ctx, budget, read), q)
}

func (s *prefetchStep) lookupCached(ctx context.Context, qs []*dnsmsg.Query, out []Cached) bool {
	next, ok := s.next.(batchStep)
	if !ok || !next.lookupCached(ctx, qs, out) {
		return false
	}
	for i, q := range qs {
		if out[i].Hit && s.due(q.Key, &out[i].Result) {
			s.start(q)
		}
	}
	return true
}

func (s *hotStep) lookupCached(ctx context.Context, qs []*dnsmsg.Query, out []Cached) bool {
	next, ok := s.next.(batchStep)
	if !ok || !next.lookupCached(ctx, qs, out) {
		return false
	}
	for i, q := range qs {
		if out[i].Hit {
			s.hot.Hit(q.Key, out[i].Result.Entry)
		}
	}
	return true
}

// manyGetter is a Store that can read several keys at once.
type manyGetter interface {
	GetMany(ctx context.Context, keys []string, out []cache.Got) bool
}

func (s *cacheStep) lookupCached(ctx context.Context, qs []*dnsmsg.Query, out []Cached) bool {
	mg, ok := s.store.(manyGetter)
	if !ok {
		return false
	}
	keys := make([]string, len(qs))
	for i, q := range qs {
		keys[i] = q.Key
	}
	got := make([]cache.Got, len(qs))
	if !mg.GetMany(ctx, keys, got) {
		return false
	}
	now := s.now()
	for i, g := range got {
		s.countReadError(keys[i], g.Err)
		out[i] = Cached{read: g}
		if g.Err == nil && g.Entry.Fresh(now) {
			out[i].Hit, out[i].Result = true, Result{Entry: g.Entry, Source: Source(g.Source), Now: now}
		}
	}
	return true
}
