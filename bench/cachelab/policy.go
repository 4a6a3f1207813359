package cachelab

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/cache"
)

// policies are the eviction policies compared.
var policies = []string{"allkeys-lru", "allkeys-lfu", "volatile-ttl", "allkeys-random"}

// policyPoint is one replay: one policy at one memory budget.
type policyPoint struct {
	Fraction float64 // budget over the working set
	Budget   int64   // maxmemory less the empty server's used_memory
	Hit      float64 // measured hit ratio
	Requests int
	Errors   int
	Evicted  int64 // evicted_keys during the replay
	Cut      bool
}

// policyResult is experiment 1.
type policyResult struct {
	Distinct   int   // distinct keys in the trace
	WorkingSet int64 // what storing all of them adds to used_memory
	Baseline   int64 // used_memory of the empty server, the client's connections open
	Ideal      float64
	Policies   []string
	Points     map[string][]policyPoint
}

// storeAll writes every item through r.Set with workers in flight.
func storeAll(ctx context.Context, r *cache.Redis, items []item, workers int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(items) {
					return
				}
				if err := r.Set(ctx, items[i].Key, entryFor(&items[i], time.Now())); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("cachelab: store: %w", err)
	}
	return ctx.Err()
}

// distinctItems returns the items the trace requests, each once.
func distinctItems(items []item, trace []int32) []item {
	seen := make(map[int32]struct{}, len(trace)/2)
	var out []item
	for _, k := range trace {
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, items[k])
		}
	}
	return out
}

// openConns makes the Ring open perShard connections to every shard (its
// pool size), each having read a command, so that their buffers are part
// of a baseline measured afterwards rather than of the budget.
func openConns(ctx context.Context, r *cache.Redis, perShard int) error {
	err := r.ForEachShard(ctx, func(ctx context.Context, _ string, c *redis.Client) error {
		var wg sync.WaitGroup
		errs := make(chan error, perShard)
		for range perShard {
			wg.Go(func() {
				// Blocking calls overlap, so the pool opens a connection for
				// each. (BLPop would round 0.1 s up to a second.)
				if err := c.Do(ctx, "BLPOP", "cachelab:none", "0.1").Err(); err != nil && !errors.Is(err, redis.Nil) {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		return <-errs
	})
	if err != nil {
		return fmt.Errorf("cachelab: open connections: %w", err)
	}
	return nil
}

// bound empties servers, the shards of r, and gives each budget bytes for
// data: maxmemory is its used_memory once empty with r's perShard
// connections open, plus budget. It returns those baselines.
func bound(ctx context.Context, r *cache.Redis, servers []*redisServer, perShard int, budget int64, policy string) ([]int64, error) {
	for _, s := range servers {
		if err := s.reset(ctx, 0, policy); err != nil {
			return nil, err
		}
	}
	if err := openConns(ctx, r, perShard); err != nil {
		return nil, err
	}
	bases := make([]int64, len(servers))
	for i, s := range servers {
		base, err := s.usedMemory(ctx)
		if err != nil {
			return nil, err
		}
		if budget > 0 {
			if err := s.setMaxmemory(ctx, base+budget); err != nil {
				return nil, err
			}
		}
		bases[i] = base
	}
	return bases, nil
}

// calibrate measures the empty server's used_memory with r's connections
// open, and how much storing every key of the trace adds to it.
func calibrate(ctx context.Context, s *redisServer, r *cache.Redis, items []item, trace []int32, workers int) (base, ws int64, distinct int, err error) {
	bases, err := bound(ctx, r, []*redisServer{s}, workers, 0, "")
	if err != nil {
		return 0, 0, 0, err
	}
	d := distinctItems(items, trace)
	if err := storeAll(ctx, r, d, workers); err != nil {
		return 0, 0, 0, fmt.Errorf("cachelab: calibrate: %w", err)
	}
	full, err := s.usedMemory(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	return bases[0], full - bases[0], len(d), nil
}

// runPolicies is experiment 1: every policy at every budget on one
// server, the same trace each time.
func runPolicies(ctx context.Context, p params, s *redisServer, items []item, trace []int32, logf func(string, ...any)) (*policyResult, error) {
	r, err := newRing([]string{s.Addr}, p.workers)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	base, ws, distinct, err := calibrate(ctx, s, r, items, trace, p.workers)
	if err != nil {
		return nil, err
	}
	res := &policyResult{
		Distinct: distinct, WorkingSet: ws, Baseline: base,
		Ideal:    float64(idealHits(trace, p.warm)) / float64(len(trace)-p.warm),
		Policies: policies, Points: make(map[string][]policyPoint),
	}
	logf("cache policies: working set", "keys", distinct, "bytes", ws, "baseline", base)
	for _, pol := range policies {
		for _, f := range p.fractions {
			budget := int64(f * float64(ws))
			if _, err := bound(ctx, r, []*redisServer{s}, p.workers, budget, pol); err != nil {
				return nil, err
			}
			start := time.Now()
			rr, err := replay(ctx, r, items, trace, p.warm, p.workers, p.runLimit, false)
			if err != nil {
				return nil, fmt.Errorf("cachelab: %s at %.2f: %w", pol, f, err)
			}
			if rr.FirstErr != nil {
				logf("cache policy: calls failed", "policy", pol, "fraction", f, "errors", rr.Errors, "first", rr.FirstErr)
			}
			ev, err := s.statField(ctx, "evicted_keys")
			if err != nil {
				return nil, err
			}
			pt := policyPoint{Fraction: f, Budget: budget, Hit: rr.HitRatio(), Requests: rr.Requests,
				Errors: rr.Errors, Evicted: ev, Cut: rr.Cut}
			res.Points[pol] = append(res.Points[pol], pt)
			logf("cache policy run", "policy", pol, "fraction", f, "hit", fmt.Sprintf("%.4f", pt.Hit),
				"requests", rr.Requests, "evicted", ev, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	return res, nil
}
