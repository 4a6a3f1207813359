package service

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/lifecycle"
	"github.com/shardns/shardns/internal/redisopt"
	"github.com/shardns/shardns/resolverd/recurse"
	"github.com/shardns/shardns/resolverd/recurse/redisstate"
	"github.com/shardns/shardns/resolverd/resolve"
)

// useSharedState gives rcfg's iterator the fleet's shared resolver state
// (resolverd/recurse/redisstate) when resolverd recurses and has cache
// shards (-recurse and -redis): delegations, answers and server state in
// the cache shards, under an in-memory cache. Without them it changes
// nothing. The shards' client and the state's writers close with g.
func useSharedState(ctx context.Context, g *lifecycle.Group, cfg Config, rcfg *resolve.Config, reg prometheus.Registerer, log *slog.Logger) error {
	w := cfg.Work
	addrs := config.List(w.Redis)
	if !cfg.Recurse || len(addrs) == 0 {
		return nil
	}
	cacheAuth, _, err := w.RedisAuth.Load()
	if err != nil {
		return fmt.Errorf("resolverd: %w", err)
	}
	open := cache.NewRing
	if w.RedisCluster {
		open = cache.NewCluster
	}
	shards, err := open(cache.RedisConfig{
		Addrs: addrs, Timeout: w.RedisTimeout,
		Username: cacheAuth.User, Password: cacheAuth.Password, TLS: cacheAuth.TLS,
		MaxBatch: 1,
	})
	if err != nil {
		return fmt.Errorf("resolverd: shared resolver state: %w", err)
	}
	g.OnClose("shared resolver state shards", shards.Close)
	redisopt.Check(ctx, log, "shared resolver state shard", addrs, cacheAuth)
	// The store starts in the iterator's DO mode (it validates with
	// -dnssec validate) and follows it on reload (recurse.DNSSECAware),
	// so answers had without signatures never reach a validator.
	store, servers, err := redisstate.New(redisstate.Config{
		Client: shards.Client(), Timeout: w.RedisTimeout, Registerer: reg, Logger: log,
		DNSSEC: rcfg.DNSSEC,
	})
	if err != nil {
		return fmt.Errorf("resolverd: %w", err)
	}
	g.OnClose("shared resolver state", func() error {
		servers.Close()
		return store.Close()
	})
	rcfg.RecurseCache = redisstate.NewLayered(recurse.NewMemCache(0), store)
	rcfg.RecurseServers = servers
	log.Info("the iterator shares its state in the cache shards", "redis", addrs, "cluster", w.RedisCluster)
	return nil
}
