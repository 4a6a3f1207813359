package redisstate

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/resolverd/recurse"
	"github.com/shardns/shardns/resolverd/resolve"
)

// Share gives rcfg's iterator the fleet's shared state in shards:
// delegations, answers and server state, under an in-memory cache, each
// call to a shard within timeout. The store starts in the iterator's DO
// mode (it validates when rcfg.DNSSEC is set) and follows it on reload
// (recurse.DNSSECAware), so answers had without signatures never reach a
// validator. close stops the state's writers once their pending writes
// are sent; call it before closing shards.
func Share(rcfg *resolve.Config, shards *cache.Redis, timeout time.Duration, reg prometheus.Registerer, log *slog.Logger) (close func() error, err error) {
	store, servers, err := New(Config{
		Client: shards.Client(), Timeout: timeout, Registerer: reg, Logger: log,
		DNSSEC: rcfg.DNSSEC,
	})
	if err != nil {
		return nil, fmt.Errorf("redisstate: %w", err)
	}
	rcfg.RecurseCache = NewLayered(recurse.NewMemCache(0), store)
	rcfg.RecurseServers = servers
	return func() error {
		servers.Close()
		return store.Close()
	}, nil
}
