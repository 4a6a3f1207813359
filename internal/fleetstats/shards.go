package fleetstats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ShardTimeout bounds ReadShards as a whole, whatever the caller's
// deadline.
const ShardTimeout = time.Second

// Shard is one cache shard as Redis itself counts it.
type Shard struct {
	Addr string `json:"addr"`
	// Up is true when the shard answered PING.
	Up bool `json:"up"`
	// Error says why the shard is down, or which of its numbers could not
	// be read.
	Error string `json:"error,omitempty"`

	Version         string `json:"redis_version,omitempty"`
	UptimeSeconds   uint64 `json:"uptime_seconds"`
	Keys            int64  `json:"keys"`
	UsedMemory      uint64 `json:"used_memory"`
	MaxMemory       uint64 `json:"maxmemory"` // 0: no limit
	MaxMemoryPolicy string `json:"maxmemory_policy"`
	EvictedKeys     uint64 `json:"evicted_keys"`
	ExpiredKeys     uint64 `json:"expired_keys"`
	KeyspaceHits    uint64 `json:"keyspace_hits"`
	KeyspaceMisses  uint64 `json:"keyspace_misses"`
	// HitRatio is hits/(hits+misses) of Redis's own counters since its
	// start or CONFIG RESETSTAT; null before any read.
	HitRatio *float64 `json:"hit_ratio"`
}

// ForEachShardFunc calls fn on every live shard, as cache.Redis's
// ForEachShard method does.
type ForEachShardFunc func(ctx context.Context, fn func(ctx context.Context, addr string, c *redis.Client) error) error

// ReadShards reads every shard each visits, concurrently, within
// ShardTimeout. addrs are the shards expected (cache.Redis.Shards() for a
// Ring; nil for a Cluster, whose masters each finds itself): one each did
// not visit (a Ring shard its heartbeat marked down) is listed down. A shard
// that fails is listed down with the error; it never fails the call. The
// error is for when no shard could be listed at all. Shards come sorted by
// address.
func ReadShards(ctx context.Context, addrs []string, each ForEachShardFunc) ([]Shard, error) {
	ctx, cancel := context.WithTimeout(ctx, ShardTimeout)
	defer cancel()
	var mu sync.Mutex
	got := map[string]Shard{}
	done := false
	result := make(chan error, 1)
	go func() {
		result <- each(ctx, func(ctx context.Context, addr string, c *redis.Client) error {
			s := readShard(ctx, addr, c)
			mu.Lock()
			defer mu.Unlock()
			if !done {
				got[addr] = s
			}
			return nil
		})
	}()
	var err error
	select {
	case err = <-result:
	case <-ctx.Done(): // each overran its deadline: list what it has read
		select {
		case err = <-result:
		default:
			err = ctx.Err()
		}
	}
	mu.Lock()
	done = true
	mu.Unlock()
	why := "not reachable: marked down by the client"
	if err != nil {
		why = err.Error()
	}
	for _, a := range addrs {
		if _, ok := got[a]; !ok {
			got[a] = Shard{Addr: a, Error: why}
		}
	}
	if len(got) == 0 && err != nil {
		return nil, fmt.Errorf("fleetstats: read shards: %w", err)
	}
	out := make([]Shard, 0, len(got))
	for _, s := range got {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Shard) int { return strings.Compare(a.Addr, b.Addr) })
	return out, nil
}

// readShard asks one shard PING, DBSIZE and INFO in one round trip.
func readShard(ctx context.Context, addr string, c *redis.Client) Shard {
	s := Shard{Addr: addr}
	var ping *redis.StatusCmd
	var size *redis.IntCmd
	var info *redis.StringCmd
	_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		ping = p.Ping(ctx)
		size = p.DBSize(ctx)
		info = p.Info(ctx)
		return nil
	})
	if err := ping.Err(); err != nil {
		s.Error = err.Error()
		return s
	}
	s.Up = true
	var errs []error
	if err := size.Err(); err != nil {
		errs = append(errs, fmt.Errorf("dbsize: %w", err))
	}
	s.Keys = size.Val()
	if err := info.Err(); err != nil {
		errs = append(errs, fmt.Errorf("info: %w", err))
	} else if err := s.fill(ParseInfo(info.Val())); err != nil {
		errs = append(errs, err)
	}
	if s.MaxMemoryPolicy == "" && info.Err() == nil {
		// INFO has had maxmemory_policy since Redis 3.2; ask older ones.
		if m, err := c.ConfigGet(ctx, "maxmemory-policy").Result(); err == nil {
			s.MaxMemoryPolicy = m["maxmemory-policy"]
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.Error = err.Error()
	}
	return s
}

// fill sets s's numbers from INFO fields. A field that is absent stays 0;
// one that does not parse is an error.
func (s *Shard) fill(info map[string]string) error {
	var errs []error
	num := func(name string) uint64 {
		v, ok := info[name]
		if !ok {
			return 0
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("info field %s=%q: %w", name, v, err))
		}
		return n
	}
	s.Version = info["redis_version"]
	s.MaxMemoryPolicy = info["maxmemory_policy"]
	s.UptimeSeconds = num("uptime_in_seconds")
	s.UsedMemory = num("used_memory")
	s.MaxMemory = num("maxmemory")
	s.EvictedKeys = num("evicted_keys")
	s.ExpiredKeys = num("expired_keys")
	s.KeyspaceHits = num("keyspace_hits")
	s.KeyspaceMisses = num("keyspace_misses")
	if total := s.KeyspaceHits + s.KeyspaceMisses; total >= s.KeyspaceHits {
		s.HitRatio = ratio(s.KeyspaceHits, total)
	}
	return errors.Join(errs...)
}

// ParseInfo splits the text of Redis's INFO reply into its "field:value"
// lines (ended by CR, LF or both). Section headers ("# Memory"), blank
// lines and lines without a colon are skipped; the value is everything
// after the first colon.
func ParseInfo(s string) map[string]string {
	m := map[string]string{}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' })
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" {
			continue
		}
		m[k] = v
	}
	return m
}
