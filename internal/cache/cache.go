// Package cache holds shardns's cache tiers: an in-process tier (L1), a Redis
// tier partitioned over shards with go-redis Ring or Redis Cluster (L2), and
// Layered, which puts the two together. It knows bytes and deadlines, not DNS
// resolution: the lookup chain decides what to store and for how long.
package cache

import "context"

// Tier is one level of the cache.
type Tier interface {
	// Get returns the entry stored under key, or ErrMiss. Any other error
	// (timeout, shard down, corrupt bytes) is for the caller to count and
	// treat as a miss.
	Get(ctx context.Context, key string) (*Entry, error)
	// Set stores e under key until e.StaleUntil.
	Set(ctx context.Context, key string, e *Entry) error
	// Delete removes the keys; absent keys are not an error.
	Delete(ctx context.Context, keys ...string) error
}
