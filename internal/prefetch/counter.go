package prefetch

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/cache"
)

// CounterConfig configures a Counter.
type CounterConfig struct {
	Client  redis.UniversalClient // the queue's Redis
	Queue   string                // the queue's name
	MinHits int                   // hits that make an entry popular (default 2)
	// Every is how often counts are sent (default 1 s).
	Every      time.Duration
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// Bounds of a Counter's memory.
const (
	maxPending = 100_000 // distinct keys counted between two sends
	maxKnown   = 100_000 // popular keys remembered, to count hot misses
)

// Counter counts one frontend's cache hits and sends them to Redis.
type Counter struct {
	cfg  CounterConfig
	keys keys

	mu      sync.Mutex
	pending map[string]*count
	known   *simplelru.LRU[string, known] // hits seen here per entry version

	sent, dropped, hotMissed prometheus.Counter
	sendErrors               prometheus.Counter
}

type count struct {
	n     int64
	dueMs int64
}

type known struct {
	storedAt time.Time
	hits     int
}

// NewCounter returns a Counter; Run sends its counts.
func NewCounter(cfg CounterConfig) *Counter {
	if cfg.MinHits <= 0 {
		cfg.MinHits = 2
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	lru, _ := simplelru.NewLRU[string, known](maxKnown, nil)
	c := &Counter{cfg: cfg, keys: keysFor(cfg.Queue), pending: map[string]*count{}, known: lru}
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "shardns", Subsystem: "prefetch", Name: name, Help: help}
	}
	c.sent = prometheus.NewCounter(opts("hits_sent_total", "Cache hits sent to the fleet's counts."))
	c.dropped = prometheus.NewCounter(opts("hits_dropped_total", "Cache hits not counted: too many distinct entries between two sends."))
	c.hotMissed = prometheus.NewCounter(opts("hot_misses_total", "Misses on entries that were popular here: prefetch came too late for them."))
	c.sendErrors = prometheus.NewCounter(opts("send_errors_total", "Sends of hit counts that failed (the counts are dropped)."))
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(c.sent, c.dropped, c.hotMissed, c.sendErrors)
	}
	return c
}

// Hit counts a cache hit on entry e under key.
func (c *Counter) Hit(key string, e *cache.Entry) {
	if e.TTL == 0 {
		return
	}
	due := e.RefreshAt().UnixMilli()
	c.mu.Lock()
	defer c.mu.Unlock()
	k, _ := c.known.Get(key)
	if !k.storedAt.Equal(e.StoredAt) {
		k = known{storedAt: e.StoredAt}
	}
	k.hits++
	c.known.Add(key, k)
	p := c.pending[key]
	if p == nil {
		if len(c.pending) >= maxPending {
			c.dropped.Inc()
			return
		}
		p = &count{}
		c.pending[key] = p
	}
	p.n++
	p.dueMs = max(p.dueMs, due)
}

// Miss notes that key was answered by the resolver; if the entry was
// popular here, prefetch missed it.
func (c *Counter) Miss(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.known.Peek(key); ok && k.hits >= c.cfg.MinHits {
		c.hotMissed.Inc()
		c.known.Remove(key)
	}
}

// Run sends the counts every cfg.Every until ctx ends, then once more.
func (c *Counter) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			c.Send(sctx)
			cancel()
			return
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, c.cfg.Every)
			c.Send(sctx)
			cancel()
		}
	}
}

// Send adds the hits counted since the last send to the fleet's counts in
// one round trip. Counts that fail to go are dropped: prefetch is an
// optimisation, and old counts would be wrong by the next send anyway.
func (c *Counter) Send(ctx context.Context) {
	c.mu.Lock()
	batch := c.pending
	c.pending = make(map[string]*count, len(batch))
	c.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	var n int64
	_, err := c.cfg.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for key, ct := range batch {
			p.ZIncrBy(ctx, c.keys.hits, float64(ct.n), key)
			// GT: a frontend still hitting an older copy does not move
			// the due time of a newer entry back.
			p.ZAddGT(ctx, c.keys.due, redis.Z{Score: float64(ct.dueMs), Member: key})
			n += ct.n
		}
		return nil
	})
	if err != nil {
		c.sendErrors.Inc()
		c.cfg.Logger.Debug("prefetch: sending hit counts failed", "err", err)
		return
	}
	c.sent.Add(float64(n))
}
