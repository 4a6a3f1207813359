package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Bounds of the operator's calls on the Redis tier (Inspect, DeleteName,
// DeleteSuffix). Each command still has the tier's Timeout; the caller's
// context bounds the whole call.
const (
	scanCount    = 1000    // keys SCAN looks at per page
	unlinkBatch  = 256     // UNLINKs per pipeline
	maxScanPages = 1 << 22 // a SCAN never takes more pages (4 billion keys)
)

// Inspection is one cache entry as stored, for operators.
type Inspection struct {
	Key   string
	Tier  Source // SourceRedis or SourceL1
	Shard string // address of the Redis shard that holds it; "" in L1
	Entry *Entry
	Size  int // bytes of the encoded entry
}

// FlushResult says what a flush removed.
type FlushResult struct {
	Deleted int      // keys removed from Redis (entries from L1 when there is no Redis)
	Shards  []string // the shards searched, sorted
}

// owner returns the client of the shard that holds key now: the live Ring
// shard key hashes to, or the Cluster master of its slot.
func (r *Redis) owner(ctx context.Context, key string) (*redis.Client, error) {
	if r.ring != nil {
		c, err := r.ring.GetShardClientForKey(key)
		if err != nil {
			return nil, fmt.Errorf("cache: shard of %s: %w", key, err)
		}
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	c, err := r.cluster.MasterForKey(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("cache: shard of %s: %w", key, err)
	}
	return c, nil
}

// freshOwner is owner for the operator's calls: on a Cluster it first
// loads the slot map (go-redis does before each ForEachMaster; it has no
// other call that waits for a reload), so that right after a failover,
// with no query traffic to have noticed it, the call goes to the new
// master and not to the demoted one, which would answer MOVED.
func (r *Redis) freshOwner(ctx context.Context, key string) (*redis.Client, error) {
	if r.cluster != nil {
		rctx, cancel := context.WithTimeout(ctx, r.timeout)
		err := r.cluster.ForEachMaster(rctx, func(context.Context, *redis.Client) error { return nil })
		cancel()
		if err != nil {
			return nil, fmt.Errorf("cache: cluster slots: %w", err)
		}
	}
	return r.owner(ctx, key)
}

// ShardFor returns the address of the shard that holds key now. For a Ring
// it costs no call; a Cluster may load its slot map. It is cheap enough to
// call on every lookup: on a Cluster it uses the slot map as last loaded.
func (r *Redis) ShardFor(ctx context.Context, key string) (string, error) {
	c, err := r.owner(ctx, key)
	if err != nil {
		return "", err
	}
	return c.Options().Addr, nil
}

// Inspect reads the entry under key from its shard as stored, stale or
// not, or returns ErrMiss.
func (r *Redis) Inspect(ctx context.Context, key string) (*Inspection, error) {
	c, err := r.freshOwner(ctx, key)
	if err != nil {
		return nil, err
	}
	b, err := c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrMiss
	}
	if err != nil {
		return nil, fmt.Errorf("cache: redis get %s: %w", key, err)
	}
	e, err := Decode(key, b)
	if err != nil {
		return nil, fmt.Errorf("cache: redis get %s: %w", key, err)
	}
	return &Inspection{Key: key, Tier: SourceRedis, Shard: c.Options().Addr, Entry: e, Size: len(b)}, nil
}

// DeleteName removes every key of name (every type, class, DO and CD
// variant). They share a hash tag, so only the shard that owns the tag is
// searched, with SCAN MATCH. name is in key form (lowercased, final dot).
func (r *Redis) DeleteName(ctx context.Context, name string) (FlushResult, error) {
	c, err := r.freshOwner(ctx, tagKey(name))
	if err != nil {
		return FlushResult{}, err
	}
	addr := c.Options().Addr
	n, err := scanUnlink(ctx, c, namePattern(name), func(k string) bool {
		kn, ok := KeyName(k)
		return ok && kn == name
	})
	res := FlushResult{Deleted: n, Shards: []string{addr}}
	if err != nil {
		return res, fmt.Errorf("cache: shard %s: %w", addr, err)
	}
	return res, nil
}

// DeleteSuffix removes every key of suffix and of every name under it (see
// UnderName) from every live shard, searched concurrently with SCAN MATCH.
// A shard that fails leaves its keys; the error names it and the result
// counts what the others removed.
func (r *Redis) DeleteSuffix(ctx context.Context, suffix string) (FlushResult, error) {
	var mu sync.Mutex
	var res FlushResult
	pattern := suffixPattern(suffix)
	err := r.ForEachShard(ctx, func(ctx context.Context, addr string, c *redis.Client) error {
		n, err := scanUnlink(ctx, c, pattern, func(k string) bool {
			kn, ok := KeyName(k)
			return ok && UnderName(kn, suffix)
		})
		mu.Lock()
		res.Deleted += n
		res.Shards = append(res.Shards, addr)
		mu.Unlock()
		return err
	})
	slices.Sort(res.Shards)
	return res, err
}

// scanUnlink walks c's keyspace with SCAN MATCH pattern and UNLINKs the
// keys match accepts, in pipelined batches of single-key UNLINKs (a Cluster
// node refuses multi-key commands across slots). It returns how many keys
// were removed, also when it stops early on an error or ctx.
func scanUnlink(ctx context.Context, c *redis.Client, pattern string, match func(string) bool) (int, error) {
	deleted := 0
	var batch []string
	flush := func() error {
		defer func() { batch = batch[:0] }()
		for chunk := range slices.Chunk(batch, unlinkBatch) {
			cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range chunk {
					p.Unlink(ctx, k)
				}
				return nil
			})
			for _, cmd := range cmds {
				if ic, ok := cmd.(*redis.IntCmd); ok {
					deleted += int(ic.Val())
				}
			}
			if err != nil {
				return fmt.Errorf("cache: unlink: %w", err)
			}
		}
		return nil
	}
	var cursor uint64
	for range maxScanPages {
		if err := ctx.Err(); err != nil {
			return deleted, fmt.Errorf("cache: scan %s: %w", pattern, err)
		}
		keys, next, err := c.Scan(ctx, cursor, pattern, scanCount).Result()
		if err != nil {
			return deleted, fmt.Errorf("cache: scan %s: %w", pattern, err)
		}
		for _, k := range keys {
			if match(k) {
				batch = append(batch, k)
			}
		}
		if len(batch) >= unlinkBatch || next == 0 {
			if err := flush(); err != nil {
				return deleted, err
			}
		}
		if next == 0 {
			return deleted, nil
		}
		cursor = next
	}
	return deleted, fmt.Errorf("cache: scan %s: more than %d pages", pattern, maxScanPages)
}
