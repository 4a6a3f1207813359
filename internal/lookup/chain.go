package lookup

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

// Bounds of the chain's own bookkeeping.
const (
	failureCacheSize = 100_000 // questions remembered as failed
	prefetchWorkers  = 64      // background refreshes at once
	prefetchTracked  = 100_000 // entries whose hits are counted
)

// Build returns the lookup chain. The order is fixed here and nowhere else:
//
//  1. metrics: outermost, so it sees every answer and its true latency,
//     whatever step produced it.
//  2. prefetch: sees each hit and where it came from; a popular entry near
//     expiry is refreshed in the background through steps 4–7, which skip
//     the cache read. With a work queue (cfg.Hot), the hits are counted for
//     the fleet instead, and the queue's workers refresh.
//  3. cache: a fresh hit ends the lookup before any lock or call; a stale
//     entry is kept aside and served only if everything below fails.
//  4. failure cache: a question the resolver just failed fails again at
//     once for a few seconds, so a dead resolver is not asked per query.
//  5. coalesce: identical concurrent misses wait for one call, so a popular
//     name expiring makes one resolver call and one cache write, not N.
//  6. store: writes what the resolver answered, once per coalesced call.
//  7. resolve: asks the resolver and turns the answer into a cache entry
//     under the TTL policy.
func Build(cfg Config) Handler {
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
	var h Handler = &resolveStep{resolver: cfg.Resolver, policy: cfg.Policy, stale: cfg.Stale, now: cfg.Now, metrics: m}
	if cfg.Store != nil {
		st := &storeStep{next: h, store: cfg.Store, log: cfg.Logger, metrics: m}
		if cfg.WriteBehind {
			st.async, _ = cfg.Store.(asyncStore)
		}
		h = st
	}
	co := &coalesceStep{next: h, timeout: cfg.ResolveTimeout, metrics: m, now: cfg.Now}
	co.l1, _ = cfg.Store.(l1Reader)
	h = co
	if cfg.FailureTTL > 0 {
		h = newFailStep(h, cfg.FailureTTL, failureCacheSize, cfg.Now, m)
	}
	if cfg.Store != nil {
		below := h
		cs := &cacheStep{next: h, store: cfg.Store, now: cfg.Now, log: cfg.Logger, metrics: m}
		cs.l1, _ = cfg.Store.(l1Reader)
		h = cs
		switch {
		case cfg.Hot != nil:
			h = &hotStep{next: h, hot: cfg.Hot}
		case cfg.PrefetchHits > 0:
			h = newPrefetchStep(h, below, cfg.PrefetchHits, prefetchWorkers, prefetchTracked, cfg.ResolveTimeout, cfg.Now, m)
		}
	}
	ms := &metricsStep{next: h, metrics: m}
	ms.l1, _ = h.(l1Step)
	ms.batch, _ = h.(batchStep)
	return ms
}
