package service

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/lifecycle"
	"github.com/shardns/shardns/resolverd/recurse"
	"github.com/shardns/shardns/resolverd/recurse/redisstate"
	"github.com/shardns/shardns/resolverd/resolve"
)

// useSharedState gives rcfg's iterator the fleet's shared resolver state
// (resolverd/recurse/redisstate) when resolverd recurses and has cache
// shards (-recurse and -redis): delegations, answers and server state in
// the cache shards, under an in-memory cache. Without them it changes
// nothing. The state's writers close with g.
func useSharedState(g *lifecycle.Group, cfg Config, shards *cache.Redis, rcfg *resolve.Config, reg prometheus.Registerer, log *slog.Logger) error {
	if !cfg.Recurse || shards == nil {
		return nil
	}
	w := cfg.Work
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
	log.Info("the iterator shares its state in the cache shards", "redis", w.Redis, "cluster", w.RedisCluster)
	return nil
}
