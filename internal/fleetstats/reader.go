package fleetstats

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoRedis is returned by a Reader that was given no Redis to read.
var ErrNoRedis = errors.New("fleetstats: no redis configured")

// Reader reads the fleet and the shards of one Redis tier; its methods
// match what the /stats handler needs.
type Reader struct {
	// Client is where frontends publish (the cache tier's Ring or Cluster
	// client); nil: Frontends fails with ErrNoRedis.
	Client redis.Cmdable
	// ShardAddrs are the shards expected: cache.Redis.Shards() for a Ring,
	// nil for a Cluster.
	ShardAddrs []string
	// EachShard visits the live shards: cache.Redis.ForEachShard. nil:
	// Shards fails with ErrNoRedis.
	EachShard ForEachShardFunc
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Shards returns ReadShards of the tier.
func (r *Reader) Shards(ctx context.Context) ([]Shard, error) {
	if r.EachShard == nil {
		return nil, ErrNoRedis
	}
	return ReadShards(ctx, r.ShardAddrs, r.EachShard)
}

// Frontends returns ReadFleet of the tier at the Reader's clock.
func (r *Reader) Frontends(ctx context.Context) ([]Frontend, error) {
	if r.Client == nil {
		return nil, ErrNoRedis
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	return ReadFleet(ctx, r.Client, now())
}
