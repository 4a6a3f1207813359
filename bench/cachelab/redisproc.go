package cachelab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shardns/shardns/internal/testutil/freeport"
)

// Bounds of starting one redis-server.
const (
	startWait     = 10 * time.Second
	startAttempts = 3
	adminTimeout  = 10 * time.Second // FLUSHALL of a few hundred MB included
)

// redisServer is one redis-server process on a loopback port, with a plain
// client for configuration and measurement.
type redisServer struct {
	Addr  string
	admin *redis.Client

	cmd      *exec.Cmd
	done     chan struct{} // closed once cmd has been waited for
	stopOnce sync.Once
	unwatch  func() bool // stops the context watch
}

// startRedis runs bin on a free 127.0.0.1 port with persistence off and
// its files in dir, and returns once it answers as the process it started.
// It is stopped by stop, or as soon as ctx is done.
func startRedis(ctx context.Context, bin, dir string, major int) (*redisServer, error) {
	var err error
	for range startAttempts {
		var s *redisServer
		if s, err = tryStartRedis(ctx, bin, dir, major); err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func tryStartRedis(ctx context.Context, bin, dir string, major int) (*redisServer, error) {
	port, err := freeport.TCP()
	if err != nil {
		return nil, fmt.Errorf("cachelab: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logPath := filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("cachelab: redis log: %w", err)
	}
	defer logf.Close()
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--logfile", "",
		// As deploy/redis/cache.conf sets them for a cache shard.
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
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cachelab: start %s: %w", bin, err)
	}
	s := &redisServer{Addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	s.unwatch = context.AfterFunc(ctx, s.stop)
	s.admin = redis.NewClient(&redis.Options{
		Addr:                     addr,
		DialTimeout:              2 * time.Second,
		ReadTimeout:              adminTimeout,
		WriteTimeout:             adminTimeout,
		MaxRetries:               -1,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	if err := s.waitReady(ctx, cmd.Process.Pid); err != nil {
		s.stop()
		return nil, fmt.Errorf("cachelab: redis-server on %s: %w: %s", addr, err, tail(logPath))
	}
	if major >= 7 {
		// Redis 7 shrinks and regrows each connection's reply buffer with
		// its traffic, which moves used_memory by up to 16 KB a connection
		// and would blur small maxmemory budgets. Keep them fixed, as
		// Redis 6 did: the baseline then holds the connections' cost.
		cctx, cancel := context.WithTimeout(ctx, adminTimeout)
		err := s.admin.Do(cctx, "DEBUG", "REPLYBUFFER", "RESIZING", "0").Err()
		cancel()
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("cachelab: redis-server on %s: debug replybuffer: %w", addr, err)
		}
	}
	return s, nil
}

// waitReady polls until the server answers and is process pid (not another
// program that took the port first), the process exits, or startWait
// passes.
func (s *redisServer) waitReady(ctx context.Context, pid int) error {
	deadline := time.Now().Add(startWait)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return errors.New("exited while starting")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		info, err := s.admin.Info(cctx, "server").Result()
		cancel()
		if err != nil {
			continue
		}
		if got := infoField(info, "process_id"); got != strconv.Itoa(pid) {
			return fmt.Errorf("port taken by process %s", got)
		}
		return nil
	}
	return fmt.Errorf("no answer within %v", startWait)
}

// stop kills the server's process group and waits for it to exit. It may
// be called any number of times.
func (s *redisServer) stop() {
	s.stopOnce.Do(func() {
		if s.unwatch != nil {
			s.unwatch()
		}
		if s.admin != nil {
			_ = s.admin.Close()
		}
		_ = killGroup(s.cmd.Process.Pid)
		select {
		case <-s.done:
		case <-time.After(startWait):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// usedMemory returns INFO memory's used_memory.
func (s *redisServer) usedMemory(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	info, err := s.admin.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("cachelab: info memory %s: %w", s.Addr, err)
	}
	n, err := strconv.ParseInt(infoField(info, "used_memory"), 10, 64)
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
	n, err := strconv.ParseInt(infoField(info, field), 10, 64)
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
	return infoField(info, "redis_version"), nil
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

// infoField returns the value of field in an INFO reply, "" if absent.
func infoField(info, field string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// serverMajor returns the major version of redis-server bin, from
// "Redis server v=7.0.15 sha=...".
func serverMajor(ctx context.Context, bin string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("cachelab: %s --version: %w", bin, err)
	}
	_, v, ok := strings.Cut(string(out), "v=")
	if !ok {
		return 0, fmt.Errorf("cachelab: %s --version: %q", bin, out)
	}
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0, fmt.Errorf("cachelab: %s --version: %q", bin, out)
	}
	return n, nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 1000 {
		b = b[len(b)-1000:]
	}
	return strings.TrimSpace(string(b))
}

// fleet is a set of redis-servers sharing one scratch folder.
type fleet struct {
	servers []*redisServer
	dir     string
}

// startFleet starts n servers; on error the ones started are stopped.
func startFleet(ctx context.Context, bin string, n int) (*fleet, error) {
	dir, err := os.MkdirTemp("", "cachelab-redis-")
	if err != nil {
		return nil, fmt.Errorf("cachelab: %w", err)
	}
	major, err := serverMajor(ctx, bin)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	f := &fleet{dir: dir}
	for range n {
		s, err := startRedis(ctx, bin, dir, major)
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
	var wg sync.WaitGroup
	for _, s := range f.servers {
		wg.Go(s.stop)
	}
	wg.Wait()
	_ = os.RemoveAll(f.dir)
}
