package cachelab

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/cache"
)

// balancePoint is the balance over n shards. The Ring hashes keys by
// shard name (the address), so the balance depends on the addresses: it is
// measured over Sets sets of n of the fleet's servers.
type balancePoint struct {
	Shards       int
	Keys         int
	Sets         int
	KeysMax      float64 // most keys on one shard over the mean, mean over the sets
	KeysWorst    float64 // ... worst set
	TrafficMax   float64 // most trace requests on one shard over the mean, mean over the sets
	TrafficWorst float64 // ... worst set
	// DBSizeMatch says whether, for the first set, DBSIZE of every shard
	// after writing every key equals the count Ring.ShardFor predicted.
	DBSizeMatch bool
}

// movePoint is the share of keys that move when a shard joins From.
type movePoint struct {
	From         int
	Ring         float64 // go-redis Ring as internal/cache configures it
	ModN         float64 // CRC-32 of the key mod N
	RingExpected float64 // 1/(N+1)
	ModNExpected float64 // N/(N+1)
}

// balanceResult is experiments 3 and 4.
type balanceResult struct {
	Balance []balancePoint
	Moves   []movePoint
	// Verified is the share of keys written through a Ring of VerifyFrom
	// shards that a Ring of VerifyFrom+1 shards no longer finds.
	VerifyFrom int
	Verified   float64
}

// ringPlacement asks a Ring over addrs where every key lives.
func ringPlacement(ctx context.Context, addrs []string, items []item) ([]string, error) {
	r, err := newRing(addrs, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return placement(ctx, r, items)
}

func placement(ctx context.Context, r *cache.Redis, items []item) ([]string, error) {
	out := make([]string, len(items))
	for i := range items {
		s, err := r.ShardFor(ctx, items[i].Key)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// runBalance is experiment 3: for each shard count, where the Ring puts
// every key of the key space, for every rotation of the fleet's servers
// taken n at a time; the first set is checked by writing every key and
// counting DBSIZE on each shard.
func runBalance(ctx context.Context, p params, f *fleet, items []item, trace []int32) ([]balancePoint, error) {
	weights := make([]float64, len(items))
	for _, k := range trace {
		weights[k]++
	}
	var out []balancePoint
	m := len(f.servers)
	for _, n := range p.balanceShards {
		pt := balancePoint{Shards: n, Keys: len(items)}
		sets := m
		if n >= m {
			sets = 1
		}
		for j := range sets {
			servers := make([]*redisServer, n)
			addrs := make([]string, n)
			for i := range servers {
				servers[i] = f.servers[(j+i)%m]
				addrs[i] = servers[i].Addr
			}
			keys, reqs, match, err := balanceOne(ctx, servers, addrs, items, weights, j == 0)
			if err != nil {
				return nil, err
			}
			pt.KeysMax += keys / float64(sets)
			pt.TrafficMax += reqs / float64(sets)
			pt.KeysWorst = max(pt.KeysWorst, keys)
			pt.TrafficWorst = max(pt.TrafficWorst, reqs)
			if j == 0 {
				pt.DBSizeMatch = match
			}
			pt.Sets++
		}
		out = append(out, pt)
	}
	return out, nil
}

// balanceOne returns the most loaded shard over the mean, in keys and in
// requests, for a Ring over addrs; with verify, it also writes every key
// and reports whether DBSIZE matches the Ring's placement on every shard.
func balanceOne(ctx context.Context, servers []*redisServer, addrs []string, items []item, weights []float64, verify bool) (keys, reqs float64, match bool, err error) {
	r, err := newRing(addrs, 0)
	if err != nil {
		return 0, 0, false, err
	}
	defer r.Close()
	pl, err := placement(ctx, r, items)
	if err != nil {
		return 0, 0, false, err
	}
	keys, per := shardBalance(pl, addrs, nil)
	reqs, _ = shardBalance(pl, addrs, weights)
	if !verify {
		return keys, reqs, false, nil
	}
	for _, s := range servers {
		if err := s.reset(ctx, 0, ""); err != nil {
			return 0, 0, false, err
		}
	}
	if _, err := loadAll(ctx, r, items); err != nil {
		return 0, 0, false, fmt.Errorf("cachelab: balance: %w", err)
	}
	match = true
	for _, s := range servers {
		n, err := s.dbSize(ctx)
		if err != nil {
			return 0, 0, false, err
		}
		match = match && float64(n) == per[s.Addr]
	}
	return keys, reqs, match, nil
}

// runMoves is experiment 4: the share of keys that change shard when one
// joins N, for the Ring and for hash mod N, over the key space; then, for
// VerifyFrom, the same measured by writing every key through a Ring of N
// shards and looking for it through a Ring of N+1.
func runMoves(ctx context.Context, p params, f *fleet, items []item) ([]movePoint, float64, error) {
	keys := make([]string, len(items))
	for i := range items {
		keys[i] = items[i].Key
	}
	var out []movePoint
	prev, err := ringPlacement(ctx, f.addrs(1), items)
	if err != nil {
		return nil, 0, err
	}
	for n := 1; n <= p.moveMax; n++ {
		next, err := ringPlacement(ctx, f.addrs(n+1), items)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, movePoint{
			From:         n,
			Ring:         movedShare(prev, next),
			ModN:         movedShare(modNPlacement(keys, n), modNPlacement(keys, n+1)),
			RingExpected: expectedConsistentMoved(n),
			ModNExpected: expectedModNMoved(n),
		})
		prev = next
	}
	lost, err := verifyMove(ctx, f, p.verifyFrom, items)
	if err != nil {
		return nil, 0, err
	}
	return out, lost, nil
}

// verifyMove writes every key through a Ring of n shards and returns the
// share a Ring of n+1 shards does not find.
func verifyMove(ctx context.Context, f *fleet, n int, items []item) (float64, error) {
	for _, s := range f.servers[:n+1] {
		if err := s.reset(ctx, 0, ""); err != nil {
			return 0, err
		}
	}
	before, err := newRing(f.addrs(n), 0)
	if err != nil {
		return 0, err
	}
	_, err = loadAll(ctx, before, items)
	_ = before.Close()
	if err != nil {
		return 0, fmt.Errorf("cachelab: move: %w", err)
	}
	after, err := newRing(f.addrs(n+1), 0)
	if err != nil {
		return 0, err
	}
	defer after.Close()
	const batch = 512
	missing := 0
	for start := 0; start < len(items); start += batch {
		end := min(start+batch, len(items))
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cmds, err := after.Client().Pipelined(cctx, func(p redis.Pipeliner) error {
			for i := start; i < end; i++ {
				p.Exists(cctx, items[i].Key)
			}
			return nil
		})
		cancel()
		if err != nil {
			return 0, fmt.Errorf("cachelab: move: %w", err)
		}
		for _, c := range cmds {
			if c.(*redis.IntCmd).Val() == 0 {
				missing++
			}
		}
	}
	return float64(missing) / float64(len(items)), nil
}
