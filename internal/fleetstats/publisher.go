package fleetstats

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// DefaultPublishTimeout bounds one publish when PublisherConfig.Timeout is
// 0 (capped at the interval).
const DefaultPublishTimeout = time.Second

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Redis is where the fleet's stats live: the cache tier's Ring or
	// Cluster client (the {stats} hash tag keeps every key on one shard or
	// slot). It should keep to its callers' deadlines
	// (ContextTimeoutEnabled, as the cache tier's clients do); otherwise
	// its own read and write timeouts bound a publish rather than Timeout.
	// nil: Run publishes nothing.
	Redis redis.Cmdable
	// ID names this frontend (empty: DefaultID, hostname:pid).
	ID string
	// Kind is "dnsd" or "cacheapi".
	Kind string
	// Gatherer is the registry the lookup chain's metrics are registered
	// on (nil: every number reads 0).
	Gatherer prometheus.Gatherer
	// Interval is the time between publishes (0: DefaultInterval).
	Interval time.Duration
	// Timeout bounds each publish (0: DefaultPublishTimeout); never more
	// than Interval.
	Timeout time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Logger gets failed publishes (nil: discarded).
	Logger *slog.Logger
}

// Publisher publishes one frontend's lookup counters to Redis at an
// interval. Failures are logged and otherwise ignored: stats never hold up
// the query path.
type Publisher struct {
	cfg     PublisherConfig
	started time.Time

	mu      sync.Mutex // serialises publishes; guards prev and failing
	prev    reading
	failing bool
}

// NewPublisher returns a Publisher; it publishes once Run is called.
func NewPublisher(cfg PublisherConfig) *Publisher {
	if cfg.ID == "" {
		cfg.ID = DefaultID()
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.NewRegistry()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultPublishTimeout
	}
	cfg.Timeout = min(cfg.Timeout, cfg.Interval)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now()
	return &Publisher{cfg: cfg, started: now, prev: reading{at: now}}
}

// ID returns the id the Publisher publishes under.
func (p *Publisher) ID() string { return p.cfg.ID }

// Run publishes at once and then every Interval until ctx is done, then
// removes this frontend's entry so it leaves the fleet at once. A frontend
// that dies without that leaves when its entry expires.
func (p *Publisher) Run(ctx context.Context) {
	if p.cfg.Redis == nil {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		p.publishLogged(ctx)
		select {
		case <-ctx.Done():
			p.remove(context.WithoutCancel(ctx))
			return
		case <-t.C:
		}
	}
}

func (p *Publisher) publishLogged(ctx context.Context) {
	err := p.Publish(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err != nil && !p.failing:
		p.failing = true
		p.cfg.Logger.Warn("fleet stats not published; retrying every interval", "id", p.cfg.ID, "err", err)
	case err != nil:
		p.cfg.Logger.Debug("fleet stats not published", "id", p.cfg.ID, "err", err)
	case p.failing:
		p.failing = false
		p.cfg.Logger.Info("fleet stats published again", "id", p.cfg.ID)
	}
}

// Publish reads the counters and writes them once, within Timeout. QPS and
// the latency quantiles cover the time since the previous Publish (since
// NewPublisher for the first). Run calls it; it is exported for a final
// publish or a one-off.
func (p *Publisher) Publish(ctx context.Context) error {
	if p.cfg.Redis == nil {
		return fmt.Errorf("fleetstats: publish: no redis")
	}
	p.mu.Lock()
	now := p.cfg.Now()
	cur, gerr := gather(p.cfg.Gatherer, now)
	fields := p.fields(cur)
	p.prev = cur
	p.mu.Unlock()
	if gerr != nil {
		p.cfg.Logger.Debug("fleet stats: some metrics not gathered", "err", gerr)
	}

	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	ttl := ExpiryIntervals * p.cfg.Interval
	key := FrontendKey(p.cfg.ID)
	_, err := p.cfg.Redis.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.HSet(ctx, key, fields...)
		pl.PExpire(ctx, key, ttl)
		pl.ZAdd(ctx, FrontendsKey, redis.Z{Score: float64(now.Add(ttl).UnixMilli()), Member: p.cfg.ID})
		pl.PExpire(ctx, FrontendsKey, max(ttl, setTTL))
		return nil
	})
	if err != nil {
		return fmt.Errorf("fleetstats: publish %s: %w", p.cfg.ID, err)
	}
	return nil
}

// fields is the hash written for reading cur, with rates over the time
// since p.prev. p.mu is held.
func (p *Publisher) fields(cur reading) []any {
	var qps float64
	if dt := cur.at.Sub(p.prev.at).Seconds(); dt > 0 {
		d := cur.queries() - p.prev.queries()
		if d < 0 { // counters reset
			d = cur.queries()
		}
		qps = d / dt
	}
	win := cur.hist.since(p.prev.hist)
	return []any{
		"kind", p.cfg.Kind,
		"started_at", strconv.FormatInt(p.started.UnixMilli(), 10),
		"updated_at", strconv.FormatInt(cur.at.UnixMilli(), 10),
		"interval_ms", strconv.FormatInt(p.cfg.Interval.Milliseconds(), 10),
		"queries", count(cur.queries()),
		"l1_hits", count(cur.l1),
		"redis_hits", count(cur.redis),
		"misses", count(cur.resolver),
		"stale", count(cur.stale),
		"errors", count(cur.failures),
		"qps", decimal(qps),
		"p50_ms", decimal(1000 * win.quantile(0.50)),
		"p90_ms", decimal(1000 * win.quantile(0.90)),
		"p99_ms", decimal(1000 * win.quantile(0.99)),
	}
}

// count formats a counter value as a whole number.
func count(v float64) string {
	if math.IsNaN(v) || v < 0 {
		v = 0
	}
	return strconv.FormatUint(uint64(min(math.Round(v), 1<<62)), 10)
}

// decimal formats v with three decimals (µs for ms values).
func decimal(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		v = 0
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// remove deletes this frontend's entry, within Timeout.
func (p *Publisher) remove(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	_, err := p.cfg.Redis.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.Del(ctx, FrontendKey(p.cfg.ID))
		pl.ZRem(ctx, FrontendsKey, p.cfg.ID)
		return nil
	})
	if err != nil {
		p.cfg.Logger.Debug("fleet stats entry not removed; it will expire", "id", p.cfg.ID, "err", err)
	}
}
