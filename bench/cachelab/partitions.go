package cachelab

import (
	"context"
	"fmt"
	"time"
)

// partitionPolicy is the eviction policy of experiment 2: the shipped
// default (deploy/redis/cache.conf).
const partitionPolicy = "allkeys-lfu"

// partitionPoint is one replay over n shards.
type partitionPoint struct {
	Shards   int
	Hit      float64
	P50      time.Duration
	P90      time.Duration
	P99      time.Duration
	P999     time.Duration
	Rate     float64 // measured requests per second (Get, and Set on a miss)
	Requests int
	Errors   int
	Evicted  int64
	Cut      bool
}

// partitionResult is experiment 2.
type partitionResult struct {
	Budget  int64 // total bytes over all shards, above their baselines
	Policy  string
	Workers int
	Points  []partitionPoint
}

// runPartitions is experiment 2: the trace over 1, 2, 4, 8 shards whose
// budgets add up to the same total.
func runPartitions(ctx context.Context, p params, f *fleet, items []item, trace []int32, total int64, logf func(string, ...any)) (*partitionResult, error) {
	res := &partitionResult{Budget: total, Policy: partitionPolicy, Workers: p.partWorkers}
	for _, n := range p.partitions {
		pt, err := runPartition(ctx, p, f, n, items, trace, total, logf)
		if err != nil {
			return nil, err
		}
		res.Points = append(res.Points, pt)
		logf("cache partitions run", "shards", n, "hit", fmt.Sprintf("%.4f", pt.Hit), "p50", pt.P50, "p99", pt.P99,
			"requests", pt.Requests, "evicted", pt.Evicted)
	}
	return res, nil
}

func runPartition(ctx context.Context, p params, f *fleet, n int, items []item, trace []int32, total int64, logf func(string, ...any)) (partitionPoint, error) {
	// The connections are split over the shards: the same number in
	// total for every n, each busy enough to keep its buffers.
	perShard := (p.partWorkers + n - 1) / n
	r, err := newRing(f.addrs(n), perShard)
	if err != nil {
		return partitionPoint{}, err
	}
	defer r.Close()
	shards := f.servers[:n]
	if _, err := bound(ctx, r, shards, perShard, total/int64(n), partitionPolicy); err != nil {
		return partitionPoint{}, err
	}
	rr, err := replay(ctx, r, items, trace, p.warm, p.partWorkers, p.partLimit, true)
	if err != nil {
		return partitionPoint{}, fmt.Errorf("cachelab: %d shards: %w", n, err)
	}
	if rr.FirstErr != nil {
		logf("cache partitions: calls failed", "shards", n, "errors", rr.Errors, "first", rr.FirstErr)
	}
	pt := partitionPoint{
		Shards: n, Hit: rr.HitRatio(), Requests: rr.Requests, Errors: rr.Errors, Cut: rr.Cut,
		P50: percentile(rr.Lat, 50), P90: percentile(rr.Lat, 90), P99: percentile(rr.Lat, 99), P999: percentile(rr.Lat, 99.9),
	}
	if rr.Elapsed > 0 {
		pt.Rate = float64(rr.Requests) / rr.Elapsed.Seconds()
	}
	for _, s := range shards {
		ev, err := s.statField(ctx, "evicted_keys")
		if err != nil {
			return partitionPoint{}, err
		}
		pt.Evicted += ev
	}
	return pt, nil
}
