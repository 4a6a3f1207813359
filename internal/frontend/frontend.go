// Package frontend builds what every shardns frontend (dnsd, cacheapi)
// shares: the cache tiers and the resolver named by the common flags, and
// the lookup chain over them.
package frontend

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
)

// L1MaxAge caps how long an L1 copy of a Redis entry lives, so frontends
// sharing the Redis tier agree within seconds.
const L1MaxAge = 5 * time.Second

// Flags are the frontend flags dnsd and cacheapi have in common.
type Flags struct {
	Redis        string
	RedisCluster bool
	RedisTimeout time.Duration
	Resolver     string
	L1           int
	L1Bytes      int64
	MinTTL       time.Duration
	MaxTTL       time.Duration
	Stale        time.Duration
}

// Register defines the flags on fs with DESIGN.md's defaults.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Redis, "redis", "", "comma list of Redis cache shards (host:port); empty: in-process cache only")
	fs.BoolVar(&f.RedisCluster, "redis-cluster", false, "treat -redis as the seed nodes of a Redis Cluster instead of Ring shards")
	fs.DurationVar(&f.RedisTimeout, "redis-timeout", 50*time.Millisecond, "budget for one Redis call on the query path; a slower shard counts as a miss")
	fs.StringVar(&f.Resolver, "resolver", "", "comma list of resolverd gRPC addresses (host:port); empty: in-process resolver")
	fs.IntVar(&f.L1, "l1", 100000, "in-process cache (L1) entries; 0 turns L1 off")
	fs.Int64Var(&f.L1Bytes, "l1-bytes", 256<<20, "in-process cache (L1) size bound in bytes")
	fs.DurationVar(&f.MinTTL, "min-ttl", 0, "lowest TTL the cache stores (shorter TTLs are raised)")
	fs.DurationVar(&f.MaxTTL, "max-ttl", 86400*time.Second, "highest TTL the cache stores (longer TTLs are lowered)")
	fs.DurationVar(&f.Stale, "stale", 24*time.Hour, "serve-stale window past the TTL (RFC 8767); 0 turns serve-stale off")
}

// Frontend is a built query path with what it holds open.
type Frontend struct {
	Chain lookup.Handler
	Store *cache.Layered
	L1    *cache.Memory // nil when -l1 0
	Redis *cache.Redis  // nil without -redis
	close []func() error
}

// Close releases the Redis and gRPC connections.
func (f *Frontend) Close() error {
	var errs []error
	for _, c := range f.close {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Build opens the tiers and the resolver the flags name and builds the
// chain. local is the in-process resolver used when -resolver is empty; nil
// makes -resolver required.
func Build(f Flags, local lookup.Resolver, reg prometheus.Registerer, log *slog.Logger) (*Frontend, error) {
	if f.MaxTTL > 0 && f.MinTTL > f.MaxTTL {
		return nil, fmt.Errorf("frontend: -min-ttl %v above -max-ttl %v", f.MinTTL, f.MaxTTL)
	}
	fe := &Frontend{}
	var l1, l2 cache.Tier
	if f.L1 > 0 {
		cfg := cache.MemoryConfig{MaxEntries: f.L1, MaxBytes: f.L1Bytes}
		if f.Redis != "" {
			cfg.MaxAge = L1MaxAge
		}
		fe.L1 = cache.NewMemory(cfg)
		l1 = fe.L1
	}
	if addrs := config.List(f.Redis); len(addrs) > 0 {
		open := cache.NewRing
		if f.RedisCluster {
			open = cache.NewCluster
		}
		r, err := open(cache.RedisConfig{Addrs: addrs, Timeout: f.RedisTimeout})
		if err != nil {
			return nil, fmt.Errorf("frontend: %w", err)
		}
		fe.Redis, l2 = r, r
		fe.close = append(fe.close, r.Close)
	}
	fe.Store = cache.NewLayered(l1, l2)

	res := local
	if addrs := config.List(f.Resolver); len(addrs) > 0 {
		remote, err := lookup.Dial(addrs)
		if err != nil {
			fe.Close()
			return nil, fmt.Errorf("frontend: %w", err)
		}
		res = remote
		fe.close = append(fe.close, remote.Close)
	}
	if res == nil {
		fe.Close()
		return nil, fmt.Errorf("frontend: -resolver is required")
	}
	fe.Chain = lookup.Build(lookup.Config{
		Store:      fe.Store,
		Resolver:   res,
		Policy:     dnsmsg.Policy{MinTTL: f.MinTTL, MaxTTL: f.MaxTTL},
		Stale:      f.Stale,
		Registerer: reg,
		Logger:     log,
	})
	return fe, nil
}
