package lookup

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// Config is everything Build needs.
type Config struct {
	Store    Store    // the cache tiers; nil: no cache
	Resolver Resolver // required
	Policy   dnsmsg.Policy
	// Stale is the serve-stale window (RFC 8767): how long past its TTL an
	// entry is kept and may be served when the resolver fails. 0 turns
	// serve-stale off.
	Stale time.Duration
	// ResolveTimeout bounds one resolver call shared by coalesced misses
	// (default 5s). Each waiter still gives up at its own deadline.
	ResolveTimeout time.Duration
	// FailureTTL is how long a resolver failure for one question is
	// remembered and answered at once (default 5s; negative turns it off).
	FailureTTL time.Duration
	// PrefetchHits is how many hits make an entry popular enough to be
	// refreshed before it expires, from its refresh time on (see
	// cache.Entry.RefreshAt; default 2; negative turns prefetch off).
	PrefetchHits int
	// Hot, when set, counts hits for the fleet's prefetch through the work
	// queue, which then replaces this process's own prefetch.
	Hot HitCounter
	// WriteBehind sends an answer from the resolver before its write to
	// the shared tier lands, when the store can write without waiting:
	// a frontend answering at line rate (dnsd) saves a round trip per
	// miss, at the cost of a window of about one round trip in which
	// other frontends, and this one's cache inspection, do not see it
	// yet. Off, the answer waits for its write (cacheapi: a lookup's
	// entry can be inspected as soon as the lookup returns).
	WriteBehind bool

	Registerer prometheus.Registerer // nil: metrics are not registered
	Logger     *slog.Logger
	Now        func() time.Time // nil: time.Now
}

// HitCounter counts cache hits for the fleet's prefetch (prefetch.Counter):
// with one, the chain leaves refreshing to the work queue instead of
// refreshing in this process.
type HitCounter interface {
	Hit(key string, e *cache.Entry)
	Miss(key string)
}

// Bounds of the chain's own bookkeeping.
const (
	failureCacheSize = 100_000 // questions remembered as failed
	prefetchWorkers  = 64      // background refreshes at once
	prefetchTracked  = 100_000 // entries whose hits are counted
)

// Chain is the query path Build returns. A question is answered in two
// parts:
//
//   - the cache read (Peek, or the one Lookup makes itself): a fresh entry
//     is the answer, and the chain's observers hear of it (metrics, then
//     the fleet's hit counter or the in-process prefetch);
//   - otherwise the steps below the cache, in this order, each wrapping
//     the next: the failure cache (a question the resolver just failed
//     fails again at once for a few seconds), coalescing (identical
//     concurrent misses wait for one call), the store (writes what the
//     resolver answered, once per coalesced call) and resolve (asks the
//     resolver and turns the answer into a cache entry under the TTL
//     policy). A stale entry the cache held is served only if they fail
//     (RFC 8767).
//
// The chain owns the goroutines it starts (prefetch refreshes, resolver
// calls shared by coalesced misses): Close cancels and waits for them.
type Chain struct {
	store   Store
	batch   batchStore   // store, when it can read L1 alone and several keys at once
	below   Handler      // failure cache → coalesce → store → resolve
	resolve *resolveStep // the end of below; SetRules changes how it stores answers
	co      *coalesceStep
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics
	hot     HitCounter  // nil: no fleet prefetch
	pf      *prefetcher // nil: no in-process prefetch
	scratch sync.Pool   // *peekScratch
}

var _ Handler = (*Chain)(nil)

// batchStore is a Store with an in-process tier it can ask alone, with the
// key in bytes, and that reads several keys at once, from every tier or
// from the shared one alone (cache.Layered).
type batchStore interface {
	GetL1(key []byte) (*cache.Entry, string, bool)
	GetMany(ctx context.Context, keys []string, out []cache.Got) bool
	GetManyL2(ctx context.Context, keys []string, out []cache.Got) bool
}

// Build returns the lookup chain (see Chain).
func Build(cfg Config) *Chain {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ResolveTimeout <= 0 {
		cfg.ResolveTimeout = 5 * time.Second
	}
	if cfg.FailureTTL == 0 {
		cfg.FailureTTL = 5 * time.Second
	}
	if cfg.PrefetchHits == 0 {
		cfg.PrefetchHits = 2
	}
	m := newMetrics(cfg.Registerer)
	c := &Chain{store: cfg.Store, now: cfg.Now, log: cfg.Logger, metrics: m}
	c.scratch.New = func() any { return new(peekScratch) }
	c.resolve = &resolveStep{resolver: cfg.Resolver, now: cfg.Now, metrics: m}
	c.SetRules(cfg.Policy, cfg.Stale)
	var h Handler = c.resolve
	if cfg.Store != nil {
		st := &storeStep{next: h, store: cfg.Store, log: cfg.Logger, metrics: m}
		if cfg.WriteBehind {
			st.async, _ = cfg.Store.(asyncStore)
		}
		h = st
		c.batch, _ = cfg.Store.(batchStore)
	}
	c.co = newCoalesceStep(h, cfg.ResolveTimeout, c.batch, cfg.Now, m)
	h = c.co
	if cfg.FailureTTL > 0 {
		h = newFailStep(h, cfg.FailureTTL, failureCacheSize, cfg.Now, m)
	}
	c.below = h
	if cfg.Store != nil {
		switch {
		case cfg.Hot != nil:
			c.hot = cfg.Hot
		case cfg.PrefetchHits > 0:
			c.pf = newPrefetcher(h, cfg.PrefetchHits, prefetchWorkers, prefetchTracked, cfg.ResolveTimeout, m)
		}
	}
	return c
}

// SetRules replaces the TTL policy and the serve-stale window that
// answers from the resolver are stored under (Config.Policy and
// Config.Stale), from the next answer on. Entries already cached keep the
// TTLs and windows they were stored with.
func (c *Chain) SetRules(policy dnsmsg.Policy, stale time.Duration) {
	c.resolve.rules.Store(&Rules{Policy: policy, Stale: stale})
}

// Close stops the chain's background work: no refresh starts from then
// on, and the refreshes and shared resolver calls in flight are cancelled
// and waited for. A lookup after Close fails with ErrResolver. Close is
// safe to call more than once.
func (c *Chain) Close() error {
	if c.pf != nil {
		c.pf.close()
	}
	c.co.close()
	return nil
}
