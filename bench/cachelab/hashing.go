package cachelab

import (
	"hash/crc32"
	"strconv"
)

// modNShard places key the way plain hash partitioning does: the CRC-32
// (IEEE) of the whole key modulo n, shard names "0".."n-1".
func modNShard(key string, n int) string {
	return strconv.Itoa(int(crc32.ChecksumIEEE([]byte(key)) % uint32(n)))
}

// modNPlacement returns modNShard of every key.
func modNPlacement(keys []string, n int) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = modNShard(k, n)
	}
	return out
}

// movedShare is the share of keys whose shard differs between two
// placements of the same keys (before[i] and after[i] name key i's shard).
func movedShare(before, after []string) float64 {
	if len(before) == 0 || len(before) != len(after) {
		return 0
	}
	moved := 0
	for i := range before {
		if before[i] != after[i] {
			moved++
		}
	}
	return float64(moved) / float64(len(before))
}

// expectedModNMoved is the share of keys that move when hash-mod-n becomes
// hash-mod-(n+1), for a uniform hash: a key stays only when h mod n equals
// h mod (n+1), which by the Chinese remainder theorem holds for n of every
// n(n+1) hash values, so n/(n+1) of the keys move.
func expectedModNMoved(n int) float64 { return float64(n) / float64(n+1) }

// expectedConsistentMoved is the share a consistent hash moves when a shard
// joins n: only the keys the new shard takes, 1/(n+1).
func expectedConsistentMoved(n int) float64 { return 1 / float64(n+1) }

// shardBalance counts keys per shard over a placement and returns the
// largest count over the mean. shards lists every shard, so that a shard
// holding no key counts in the mean. weights, if not nil, weighs key i by
// weights[i] (e.g. its requests in a trace) instead of 1.
func shardBalance(placement []string, shards []string, weights []float64) (maxOverMean float64, per map[string]float64) {
	per = make(map[string]float64, len(shards))
	for _, s := range shards {
		per[s] = 0
	}
	total := 0.0
	for i, s := range placement {
		w := 1.0
		if weights != nil {
			w = weights[i]
		}
		per[s] += w
		total += w
	}
	if total == 0 || len(per) == 0 {
		return 0, per
	}
	mean := total / float64(len(per))
	most := 0.0
	for _, v := range per {
		most = max(most, v)
	}
	return most / mean, per
}
