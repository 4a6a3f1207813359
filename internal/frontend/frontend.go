// Package frontend builds what every shardns frontend (dnsd, cacheapi)
// shares: the cache tiers and the resolver named by the common flags, and
// the lookup chain over them.
package frontend

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/fleetstats"
	"github.com/shardns/shardns/internal/lifecycle"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/prefetch"
	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/redisopt"
)

// L1MaxAge caps how long an L1 copy of a Redis entry lives, so frontends
// sharing the Redis tier agree within seconds even when a flush
// announcement is lost.
const L1MaxAge = 5 * time.Second

// Bounds of the operator's calls, and of Close.
const (
	probeTimeout   = time.Second     // the readiness lookup of ". NS"
	publishTimeout = 2 * time.Second // announcing a flush, after it is done
	closeTimeout   = 5 * time.Second // the loops' last sends, then the connections
)

// Flags are the frontend flags dnsd and cacheapi have in common: the Redis
// tiers and the cache rules every daemon shares (internal/config), and the
// in-process cache and the resolver client only the frontends have.
type Flags struct {
	config.Tiers
	config.CacheRules
	Resolver    string
	ResolverTLS ResolverTLS // TLS to -resolver (resolver.go)
	L1          int
	L1Bytes     int64

	// WriteBehind is set by the frontend, not by a flag: see
	// lookup.Config.WriteBehind.
	WriteBehind bool
}

// Register defines the flags on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	f.Tiers.Register(fs)
	f.CacheRules.Register(fs)
	fs.StringVar(&f.Resolver, "resolver", "", "comma list of resolverd gRPC addresses (host:port); empty: in-process resolver")
	f.ResolverTLS.register(fs)
	fs.IntVar(&f.L1, "l1", 100000, "in-process cache (L1) entries; 0 turns L1 off")
	fs.Int64Var(&f.L1Bytes, "l1-bytes", 256<<20, "in-process cache (L1) size bound in bytes")
}

// Frontend is a built query path with what it holds open. With both L1
// and Redis it listens for flushes announced by any frontend (see Flush)
// and drops the flushed names from its L1.
type Frontend struct {
	Chain    *lookup.Chain
	Store    *cache.Layered
	L1       *cache.Memory // nil when -l1 0
	Redis    *cache.Redis  // nil without -redis
	Queue    *queue.Queue  // nil without -queue-redis
	resolver lookup.Resolver
	local    *fleetstats.Local // the process's own stats (stats.go)
	parts    *lifecycle.Group  // what Build opened and started, in order
}

// Close stops the chain's background work (see lookup.Chain.Close) and the
// frontend's loops (the prefetch counter sends its last counts), stops
// listening for flushes and releases the Redis and gRPC connections, in
// the reverse order of opening.
func (f *Frontend) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return f.parts.Stop(ctx)
}

// Build opens the tiers and the resolver the flags name and builds the
// chain. local is the in-process resolver used when -resolver is empty; nil
// makes -resolver required. Every Redis server named is asked once at
// start, and one that refuses the credentials or the TLS settings is
// logged at error level (see redisopt.Check); it does not stop the build.
func Build(f Flags, local lookup.Resolver, reg prometheus.Registerer, log *slog.Logger) (*Frontend, error) {
	rules, err := f.Rules()
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	cacheAuth, queueAuth, err := f.RedisAuth.Load()
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	fe := &Frontend{parts: lifecycle.New(context.Background(), log)}
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
		r, err := cache.Open(f.RedisCluster, cache.RedisConfig{
			Addrs: addrs, Timeout: f.RedisTimeout,
			Username: cacheAuth.User, Password: cacheAuth.Password, TLS: cacheAuth.TLS,
			Registerer: reg, Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("frontend: %w", err)
		}
		redisopt.Check(context.Background(), log, "cache shard", addrs, cacheAuth)
		fe.Redis, l2 = r, r
		fe.parts.OnClose("cache shards", r.Close)
		if fe.L1 != nil {
			sub := r.SubscribeInvalidations(func(inv cache.Invalidation) { fe.L1.Invalidate(inv) }, log)
			fe.parts.OnClose("flush subscriber", sub.Close)
		}
	}
	fe.Store = cache.NewLayered(l1, l2)

	res := local
	if addrs := config.List(f.Resolver); len(addrs) > 0 {
		remote, err := dialResolver(addrs, f.ResolverTLS, log)
		if err != nil {
			fe.Close()
			return nil, fmt.Errorf("frontend: %w", err)
		}
		res = remote
		fe.parts.OnClose("resolver client", remote.Close)
	}
	if res == nil {
		fe.Close()
		return nil, fmt.Errorf("frontend: -resolver is required")
	}
	fe.resolver = res
	cfg := lookup.Config{
		Store:        fe.Store,
		Resolver:     res,
		Policy:       rules.Policy,
		Stale:        rules.Stale,
		PrefetchHits: f.PrefetchHits,
		WriteBehind:  f.WriteBehind,
		Registerer:   reg,
		Logger:       log,
	}
	if f.PrefetchHits == 0 {
		cfg.PrefetchHits = -1
	}
	if f.QueueRedis != "" {
		q, err := queue.Open(f.QueueRedis, queue.Config{Name: f.Queue, Auth: queueAuth})
		if err != nil {
			fe.Close()
			return nil, fmt.Errorf("frontend: %w", err)
		}
		if c, ok := q.Client().(*redis.Client); ok {
			_ = redisopt.CheckClient(context.Background(), log, "queue Redis", c, queueAuth)
		}
		fe.Queue = q
		fe.parts.OnClose("queue Redis", q.Client().Close)
		if f.PrefetchHits > 0 && fe.Redis != nil {
			// The fleet's prefetch: this frontend counts, resolverd refreshes.
			hot := prefetch.NewCounter(prefetch.CounterConfig{
				Client: q.Client(), Queue: q.Name(), MinHits: f.PrefetchHits, Registerer: reg, Logger: log,
			})
			fe.parts.Go("prefetch counter", hot.Run)
			cfg.Hot = hot
		}
	}
	fe.Chain = lookup.Build(cfg)
	fe.newLocalStats(f, reg)
	// Opened last, so stopped first: its refreshes use the tiers and the resolver.
	fe.parts.OnClose("lookup chain", fe.Chain.Close)
	return fe, nil
}

// Shard returns the address of the Redis shard that holds key now, or ""
// without Redis or when no shard is up.
func (f *Frontend) Shard(ctx context.Context, key string) string {
	if f.Redis == nil {
		return ""
	}
	addr, err := f.Redis.ShardFor(ctx, key)
	if err != nil {
		return ""
	}
	return addr
}

// Inspect returns the entry under key as stored: from Redis when the
// frontend has it (stale or not, however old this frontend's L1 copy),
// else from L1. It returns cache.ErrMiss when there is none.
func (f *Frontend) Inspect(ctx context.Context, key string) (*cache.Inspection, error) {
	switch {
	case f.Redis != nil:
		return f.Redis.Inspect(ctx, key)
	case f.L1 != nil:
		return f.L1.Inspect(key)
	}
	return nil, cache.ErrMiss
}

// Flush removes name, or with suffix name and every name under it, from
// the Redis tier and this frontend's L1, then announces it on Redis pub/sub
// so that every other frontend drops it from its L1 too. name is in key
// form: lowercased presentation format with the final dot. The result
// counts the Redis keys removed, or the L1 entries when there is no Redis.
// The announcement goes out even when the Redis delete failed part way,
// for what it did remove.
func (f *Frontend) Flush(ctx context.Context, name string, suffix bool) (cache.FlushResult, error) {
	var res cache.FlushResult
	var errs []error
	if f.Redis != nil {
		var err error
		if suffix {
			res, err = f.Redis.DeleteSuffix(ctx, name)
		} else {
			res, err = f.Redis.DeleteName(ctx, name)
		}
		errs = append(errs, err)
	}
	inv := cache.NewInvalidation(name, suffix)
	if f.L1 != nil {
		if n := f.L1.Invalidate(inv); f.Redis == nil {
			res.Deleted = n
		}
	}
	if f.Redis != nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
		defer cancel()
		errs = append(errs, f.Redis.PublishInvalidation(pctx, inv))
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("frontend: flush %s: %w", name, err)
	}
	return res, nil
}

// Ready reports what the frontend depends on, each with nil when it is
// usable: "redis" (configured only) when at least one shard answers PING,
// and "resolver" when a lookup of ". NS" sent straight to the resolver,
// past the cache, is answered within a second. Any DNS answer counts,
// REFUSED and SERVFAIL included: the resolver is reachable.
func (f *Frontend) Ready(ctx context.Context) map[string]error {
	out := map[string]error{}
	if f.Redis != nil {
		out["redis"] = f.Redis.Ping(ctx)
	}
	if f.resolver != nil {
		ctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		probe := dnsmsg.Query{Name: ".", Type: dns.TypeNS, Class: dns.ClassINET}
		q, err := probe.AppendUpstream(nil, dns.Id())
		if err == nil {
			_, err = f.resolver.Resolve(ctx, q)
		}
		if err != nil {
			out["resolver"] = fmt.Errorf("frontend: resolver: %w", err)
		} else {
			out["resolver"] = nil
		}
	}
	return out
}
