package service

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/lifecycle"
	"github.com/shardns/shardns/resolverd/recurse/redisstate"
	"github.com/shardns/shardns/resolverd/resolve"
)

// useSharedState gives rcfg's iterator the fleet's shared resolver state
// (redisstate.Share) when resolverd recurses and has cache shards
// (-recurse and -redis). Without them it changes nothing. The state's
// writers close with g.
func useSharedState(g *lifecycle.Group, cfg Config, shards *cache.Redis, rcfg *resolve.Config, reg prometheus.Registerer, log *slog.Logger) error {
	if !cfg.Recurse || shards == nil {
		return nil
	}
	closeState, err := redisstate.Share(rcfg, shards, cfg.Work.RedisTimeout, reg, log)
	if err != nil {
		return fmt.Errorf("resolverd: %w", err)
	}
	g.OnClose("shared resolver state", closeState)
	log.Info("the iterator shares its state in the cache shards", "redis", cfg.Work.Redis, "cluster", cfg.Work.RedisCluster)
	return nil
}
