package cachelab

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shardns/shardns/bench/proc"
	"github.com/shardns/shardns/bench/redisproc"
)

// adminTimeout bounds one admin call, FLUSHALL of a few hundred MB
// included.
const adminTimeout = 10 * time.Second

// redisServer is one redis-server process on a loopback port, with a plain
// client for configuration and measurement.
type redisServer struct {
	Addr  string
	admin *redis.Client
	proc  *proc.Proc
}

// startRedis runs bin in g on a free 127.0.0.1 port, configured as
// deploy/redis/cache.conf configures a cache shard, with persistence off
// and its files in dir, and returns once it answers as the process it
// started.
func startRedis(ctx context.Context, g *proc.Group, name, bin, dir string, major int) (*redisServer, error) {
	args := []string{
		"--maxmemory-samples", "10",
		"--lazyfree-lazy-eviction", "yes",
		"--lazyfree-lazy-expire", "yes",
		"--lazyfree-lazy-server-del", "yes",
	}
	if major >= 7 {
		// Per-command latency histograms are allocated on a command's
		// first use and freed by CONFIG RESETSTAT: tens of KB that would
		// come out of a small maxmemory budget. DEBUG (for REPLYBUFFER
		// below) from loopback only.
		args = append(args, "--latency-tracking", "no", "--enable-debug-command", "local")
	}
	rs, err := redisproc.Start(ctx, redisproc.Config{Group: g, Name: name, Bin: bin, Dir: dir, Args: args})
	if err != nil {
		return nil, fmt.Errorf("cachelab: %w", err)
	}
	s := &redisServer{Addr: rs.Addr, proc: rs.Proc}
	s.admin = redis.NewClient(&redis.Options{
		Addr:                     s.Addr,
		DialTimeout:              2 * time.Second,
		ReadTimeout:              adminTimeout,
		WriteTimeout:             adminTimeout,
		MaxRetries:               -1,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	if major >= 7 {
		// Redis 7 shrinks and regrows each connection's reply buffer with
		// its traffic, which moves used_memory by up to 16 KB a connection
		// and would blur small maxmemory budgets. Keep them fixed, as
		// Redis 6 does: the baseline then holds the connections' cost.
		cctx, cancel := context.WithTimeout(ctx, adminTimeout)
		err := s.admin.Do(cctx, "DEBUG", "REPLYBUFFER", "RESIZING", "0").Err()
		cancel()
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("cachelab: redis-server on %s: debug replybuffer: %w", s.Addr, err)
		}
	}
	return s, nil
}

// stop closes the admin client and stops the process. It may be called
// any number of times.
func (s *redisServer) stop() {
	_ = s.admin.Close()
	s.proc.Stop()
}

// usedMemory returns INFO memory's used_memory.
func (s *redisServer) usedMemory(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	info, err := s.admin.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("cachelab: info memory %s: %w", s.Addr, err)
	}
	n, err := strconv.ParseInt(redisproc.InfoField(info, "used_memory"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cachelab: info memory %s: used_memory: %w", s.Addr, err)
	}
	return n, nil
}

// setMaxmemory sets maxmemory (0: no bound).
func (s *redisServer) setMaxmemory(ctx context.Context, n int64) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	if err := s.admin.ConfigSet(ctx, "maxmemory", strconv.FormatInt(n, 10)).Err(); err != nil {
		return fmt.Errorf("cachelab: config %s: %w", s.Addr, err)
	}
	return nil
}

// statField returns one integer field of INFO stats (e.g. evicted_keys).
func (s *redisServer) statField(ctx context.Context, field string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	info, err := s.admin.Info(ctx, "stats").Result()
	if err != nil {
		return 0, fmt.Errorf("cachelab: info stats %s: %w", s.Addr, err)
	}
	n, err := strconv.ParseInt(redisproc.InfoField(info, field), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cachelab: info stats %s: %s: %w", s.Addr, field, err)
	}
	return n, nil
}

// reset empties the server and sets its memory bound and eviction policy
// (maxmemory 0: no bound). Statistics are reset too.
func (s *redisServer) reset(ctx context.Context, maxmemory int64, policy string) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	if err := s.admin.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		return fmt.Errorf("cachelab: config %s: %w", s.Addr, err)
	}
	if err := s.admin.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("cachelab: flushall %s: %w", s.Addr, err)
	}
	if err := s.admin.ConfigResetStat(ctx).Err(); err != nil {
		return fmt.Errorf("cachelab: config resetstat %s: %w", s.Addr, err)
	}
	if policy != "" {
		if err := s.admin.ConfigSet(ctx, "maxmemory-policy", policy).Err(); err != nil {
			return fmt.Errorf("cachelab: config %s: %w", s.Addr, err)
		}
	}
	if err := s.admin.ConfigSet(ctx, "maxmemory", strconv.FormatInt(maxmemory, 10)).Err(); err != nil {
		return fmt.Errorf("cachelab: config %s: %w", s.Addr, err)
	}
	return nil
}

// version returns INFO server's redis_version.
func (s *redisServer) version(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	info, err := s.admin.Info(ctx, "server").Result()
	if err != nil {
		return "", fmt.Errorf("cachelab: info server %s: %w", s.Addr, err)
	}
	return redisproc.InfoField(info, "redis_version"), nil
}

// dbSize returns the number of keys.
func (s *redisServer) dbSize(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	n, err := s.admin.DBSize(ctx).Result()
	if err != nil {
		return 0, fmt.Errorf("cachelab: dbsize %s: %w", s.Addr, err)
	}
	return n, nil
}

// fleet is a set of redis-servers sharing one scratch folder, stopped
// together by stop or as soon as the context they were started with ends.
type fleet struct {
	servers []*redisServer
	dir     string
	group   *proc.Group
	unwatch func() bool // stops the context watch
}

// startFleet starts n servers; on error the ones started are stopped.
func startFleet(ctx context.Context, bin string, n int) (*fleet, error) {
	dir, err := os.MkdirTemp("", "cachelab-redis-")
	if err != nil {
		return nil, fmt.Errorf("cachelab: %w", err)
	}
	f := &fleet{dir: dir, group: proc.NewGroup(dir, slog.New(slog.DiscardHandler))}
	f.unwatch = context.AfterFunc(ctx, f.group.StopAll)
	major, err := redisproc.Major(ctx, bin)
	if err != nil {
		f.stop()
		return nil, fmt.Errorf("cachelab: %w", err)
	}
	for i := range n {
		s, err := startRedis(ctx, f.group, fmt.Sprintf("redis%d", i), bin, dir, major)
		if err != nil {
			f.stop()
			return nil, err
		}
		f.servers = append(f.servers, s)
	}
	return f, nil
}

// addrs returns the addresses of the first n servers.
func (f *fleet) addrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f.servers[i].Addr
	}
	return out
}

// stop stops every server and removes the scratch folder.
func (f *fleet) stop() {
	f.unwatch()
	for _, s := range f.servers {
		_ = s.admin.Close()
	}
	f.group.StopAll()
	_ = os.RemoveAll(f.dir)
}
