package fleetstats

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// readShards is ReadShards of a cache tier, checked to return within a
// generous bound.
func readShards(t *testing.T, r *cache.Redis) []Shard {
	t.Helper()
	start := time.Now()
	shards, err := ReadShards(t.Context(), r.Shards(), r.ForEachShard)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("ReadShards took %v", d)
	}
	if err != nil {
		t.Fatalf("ReadShards: %v", err)
	}
	return shards
}

func TestReadShardsKilledAndPaused(t *testing.T) {
	srv := redistest.StartN(t, 4, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lfu")
	r, err := cache.NewRing(cache.RedisConfig{Addrs: redistest.Addrs(srv)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	killed, paused := srv[1], srv[2]
	killed.Kill()
	paused.Pause()
	t.Cleanup(paused.Resume)

	check := func(when string) {
		t.Helper()
		shards := readShards(t, r)
		if len(shards) != 4 {
			t.Fatalf("%s: %d shards listed, want 4: %+v", when, len(shards), shards)
		}
		for _, s := range shards {
			down := s.Addr == killed.Addr || s.Addr == paused.Addr
			switch {
			case down && (s.Up || s.Error == ""):
				t.Errorf("%s: %s listed up or without an error: %+v", when, s.Addr, s)
			case !down && (!s.Up || s.Error != ""):
				t.Errorf("%s: live %s listed down: %+v", when, s.Addr, s)
			case !down && (s.MaxMemory != 64<<20 || s.MaxMemoryPolicy != "allkeys-lfu" ||
				s.UsedMemory == 0 || s.Version == "" || s.HitRatio != nil):
				t.Errorf("%s: live %s: %+v", when, s.Addr, s)
			}
		}
	}
	// At once, before the Ring's heartbeat has noticed: the reads fail.
	check("at once")
	// Once the heartbeat marked them down, the Ring skips them.
	waitFor(t, 10*time.Second, "the ring marking 2 shards down", func() bool {
		var n atomic.Int32
		_ = r.ForEachShard(t.Context(), func(context.Context, string, *redis.Client) error { n.Add(1); return nil })
		return n.Load() == 2
	})
	check("marked down")
}

func TestReadShardsCounters(t *testing.T) {
	srv := redistest.StartN(t, 2, "--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru")
	r, err := cache.NewRing(cache.RedisConfig{Addrs: redistest.Addrs(srv), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := t.Context()

	// Shard 0: 3 hits and 2 misses, one of them an expired key.
	c := srv[0].Client()
	must(t, c.Set(ctx, "k", "v", 0).Err())
	for range 3 {
		must(t, c.Get(ctx, "k").Err())
	}
	if err := c.Get(ctx, "absent").Err(); err != redis.Nil {
		t.Fatalf("GET absent: %v", err)
	}
	must(t, c.Set(ctx, "e", "v", time.Millisecond).Err())
	time.Sleep(20 * time.Millisecond)
	if err := c.Get(ctx, "e").Err(); err != redis.Nil {
		t.Fatalf("GET of an expired key: %v", err)
	}

	// Shard 1: write well past maxmemory, so it evicts.
	c1 := srv[1].Client()
	val := strings.Repeat("x", 10_000)
	for i := range 600 {
		must(t, c1.Set(ctx, fmt.Sprintf("big%d", i), val, 0).Err())
	}

	shards := readShards(t, r)
	byAddr := map[string]Shard{}
	for _, s := range shards {
		byAddr[s.Addr] = s
	}
	s0 := byAddr[srv[0].Addr]
	if !s0.Up || s0.KeyspaceHits != 3 || s0.KeyspaceMisses != 2 || s0.ExpiredKeys != 1 || s0.Keys != 1 || s0.EvictedKeys != 0 {
		t.Errorf("shard 0 = %+v; want up, 3 hits, 2 misses, 1 expired, 1 key", s0)
	}
	if s0.HitRatio == nil || math.Abs(*s0.HitRatio-0.6) > 1e-9 {
		t.Errorf("shard 0 hit ratio %v, want 0.6", s0.HitRatio)
	}
	s1 := byAddr[srv[1].Addr]
	if !s1.Up || s1.EvictedKeys == 0 || s1.MaxMemory != 3<<20 || s1.MaxMemoryPolicy != "allkeys-lru" ||
		s1.Keys <= 0 || s1.Keys >= 600 {
		t.Errorf("shard 1 = %+v; want evictions under maxmemory 3mb allkeys-lru", s1)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadShardsOverrunningVisitor(t *testing.T) {
	// A visitor that ignores its deadline cannot hold ReadShards past
	// ShardTimeout; the shards it never reached are listed down.
	release := make(chan struct{})
	defer close(release)
	start := time.Now()
	shards, err := ReadShards(t.Context(), []string{"127.0.0.1:1", "127.0.0.1:2"},
		func(context.Context, func(context.Context, string, *redis.Client) error) error {
			<-release
			return nil
		})
	if d := time.Since(start); d > ShardTimeout+4*time.Second {
		t.Fatalf("ReadShards took %v", d)
	}
	if err != nil || len(shards) != 2 || shards[0].Up || !strings.Contains(shards[0].Error, "deadline") {
		t.Errorf("ReadShards = %+v, %v; want 2 shards down by the deadline", shards, err)
	}
}

func TestReadShardsNothingToList(t *testing.T) {
	shards, err := ReadShards(t.Context(), nil,
		func(context.Context, func(context.Context, string, *redis.Client) error) error {
			return fmt.Errorf("cluster state unknown")
		})
	if err == nil || shards != nil {
		t.Errorf("ReadShards = %v, %v; want an error", shards, err)
	}
}
