// Package fleetstats shares every frontend's lookup counters through Redis
// and reads them back, with the cache shards' own counters, for the /stats
// page: each frontend (dnsd, cacheapi) publishes a small hash every few
// seconds, so any cacheapi shows the whole fleet.
//
// Keys, all under the hash tag {stats} so they share one Ring shard or one
// Cluster slot and can be written and read in one pipeline:
//
//	shardns:{stats}:frontend:<id>   hash of one frontend's numbers, expiring
//	                                 3 intervals after its last publish
//	shardns:{stats}:frontends       sorted set of ids, scored by the unix ms
//	                                 at which the member's hash expires
package fleetstats

import (
	"fmt"
	"os"
	"time"
)

// Redis keys of the fleet's stats.
const (
	// FrontendKeyPrefix is followed by a frontend's id.
	FrontendKeyPrefix = "shardns:{stats}:frontend:"
	// FrontendsKey is the sorted set of frontend ids.
	FrontendsKey = "shardns:{stats}:frontends"
)

// DefaultInterval is how often a Publisher publishes when
// PublisherConfig.Interval is 0.
const DefaultInterval = 5 * time.Second

// ExpiryIntervals is how many publish intervals a frontend's hash outlives
// its last publish: a frontend that stops publishing vanishes after it.
const ExpiryIntervals = 3

// MaxFrontends bounds how many frontends ReadFleet reads (the most recently
// seen first).
const MaxFrontends = 1000

// pruneGrace is how far past its expiry score a member stays in the sorted
// set before a reader removes it. Liveness is decided by the hash (expired
// by Redis's own clock); the grace keeps a reader whose clock runs ahead
// from dropping live members.
const pruneGrace = time.Minute

// setTTL is the least expiry of the sorted set, refreshed by every publish,
// so the set itself goes away when the whole fleet stops.
const setTTL = 24 * time.Hour

// FrontendKey returns the hash key of frontend id.
func FrontendKey(id string) string { return FrontendKeyPrefix + id }

// DefaultID returns "hostname:pid", unique per running process.
func DefaultID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return fmt.Sprintf("%s:%d", h, os.Getpid())
}
