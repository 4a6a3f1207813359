package service

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/lifecycle"
	"github.com/shardns/shardns/resolverd/resolve"
)

// openShards opens the fleet's cache shards (-redis), or returns nil
// without them: the queue's workers write answers there, the iterator
// shares its state there, and a reload flushes the local zones from them.
// The client closes with g, after every part that uses it.
func openShards(ctx context.Context, g *lifecycle.Group, w WorkFlags, reg prometheus.Registerer, log *slog.Logger) (*cache.Redis, error) {
	shards, err := w.Tiers.OpenShards(ctx, reg, log)
	if err != nil {
		return nil, fmt.Errorf("resolverd: %w", err)
	}
	if shards != nil {
		g.OnClose("cache shards", shards.Close)
	}
	return shards, nil
}

// flushFrom is how a reload drops a local zone's answers from the fleet's
// caches: from the shards, and from every frontend's L1 through the
// shards' invalidation channel (what cacheapi's flush does).
func flushFrom(shards *cache.Redis) resolve.FlushZone {
	return func(ctx context.Context, zone string) (int, error) {
		r, err := shards.DeleteSuffix(ctx, zone)
		if err != nil {
			return r.Deleted, err
		}
		return r.Deleted, shards.PublishInvalidation(ctx, cache.NewInvalidation(zone, true))
	}
}
