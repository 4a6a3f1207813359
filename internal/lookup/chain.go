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
	Registerer     prometheus.Registerer // nil: metrics are not registered
	Logger         *slog.Logger
	Now            func() time.Time // nil: time.Now
}

// Build returns the lookup chain. The order is fixed here and nowhere else:
//
//  1. metrics: outermost, so it sees every answer and its true latency,
//     whatever step produced it.
//  2. cache: a fresh hit ends the lookup before any lock or call; a stale
//     entry is kept aside and served only if everything below fails.
//  3. coalesce: identical concurrent misses wait for one call, so a popular
//     name expiring makes one resolver call and one cache write, not N.
//  4. store: writes what the resolver answered, once per coalesced call.
//  5. resolve: asks the resolver and turns the answer into a cache entry
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
	m := newMetrics(cfg.Registerer)
	var h Handler = &resolveStep{resolver: cfg.Resolver, policy: cfg.Policy, stale: cfg.Stale, now: cfg.Now, metrics: m}
	if cfg.Store != nil {
		h = &storeStep{next: h, store: cfg.Store, log: cfg.Logger, metrics: m}
	}
	h = &coalesceStep{next: h, timeout: cfg.ResolveTimeout, metrics: m}
	if cfg.Store != nil {
		h = &cacheStep{next: h, store: cfg.Store, now: cfg.Now, log: cfg.Logger, metrics: m}
	}
	return &metricsStep{next: h, metrics: m}
}
