package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/testutil/procs"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// need returns the path of a program the test runs, or skips the test with
// an install hint (fails it when CI is set).
func need(t *testing.T, program, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		msg := fmt.Sprintf("%s not found: apt-get install %s", program, pkg)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// startRedisConf runs redis-server with one of deploy/redis's config files,
// on a free loopback port with its data in dir, plus extra settings, and
// returns a client. The server is stopped when the test ends.
func startRedisConf(t *testing.T, conf, dir string, extra ...string) *redis.Client {
	t.Helper()
	server := need(t, "redis-server", "redis-server")
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{filepath.Join(repoRoot(t), "deploy", "redis", conf),
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--logfile", "", "--daemonize", "no"}, extra...)
	cmd := exec.Command(server, args...)
	var out procs.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	t.Cleanup(func() {
		rdb.Close()
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return rdb
		}
		select {
		case <-exited:
			t.Fatalf("redis-server %s exited:\n%s", conf, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server %s: no PONG within 10s: %v\n%s", conf, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func configGet(t *testing.T, rdb *redis.Client, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := rdb.ConfigGet(ctx, key).Result()
	if err != nil {
		t.Fatalf("CONFIG GET %s: %v", key, err)
	}
	return v[key]
}

func wantConfig(t *testing.T, rdb *redis.Client, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := configGet(t, rdb, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// fill writes up to n values of size bytes and returns the first write
// error.
func fill(t *testing.T, rdb *redis.Client, n, size int) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	val := strings.Repeat("x", size)
	for i := range n {
		if err := rdb.Set(ctx, "dns:{n"+strconv.Itoa(i)+".test.}:A:IN", val, time.Hour).Err(); err != nil {
			return err
		}
	}
	return nil
}

// TestRedisCacheConf runs a real redis-server with deploy/redis/cache.conf:
// the settings load, and a full shard evicts instead of refusing writes.
func TestRedisCacheConf(t *testing.T) {
	dir := t.TempDir()
	rdb := startRedisConf(t, "cache.conf", dir)
	wantConfig(t, rdb, map[string]string{
		"maxmemory":        strconv.Itoa(256 << 20),
		"maxmemory-policy": "allkeys-lfu",
		"save":             "",
		"appendonly":       "no",
	})

	// The same file with a tiny bound: 8 MB of writes into 2 MB evict.
	small := startRedisConf(t, "cache.conf", t.TempDir(), "--maxmemory", "2mb")
	if err := fill(t, small, 2000, 4096); err != nil {
		t.Fatalf("a full cache shard refused a write: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := small.Info(ctx, "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(info, "evicted_keys:0\r") {
		t.Errorf("nothing evicted after 8 MB into 2 MB:\n%s", info)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("cache shard wrote %s to disk", e.Name())
	}
}

// TestRedisQueueConf runs a real redis-server with deploy/redis/queue.conf:
// AOF on and noeviction, a full queue refuses writes rather than dropping
// tasks, and what was written survives a restart.
func TestRedisQueueConf(t *testing.T) {
	dir := t.TempDir()
	rdb := startRedisConf(t, "queue.conf", dir, "--maxmemory", "2mb")
	wantConfig(t, rdb, map[string]string{
		"maxmemory-policy": "noeviction",
		"appendonly":       "yes",
		"appendfsync":      "everysec",
	})
	err := fill(t, rdb, 2000, 4096)
	if err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("8 MB into a 2 MB queue: error %v, want OOM", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := rdb.DBSize(ctx).Result()
	if err != nil || n == 0 {
		t.Fatalf("DBSIZE %d, %v", n, err)
	}
	// SHUTDOWN (as on SIGTERM) flushes the AOF; a new server on the same
	// folder reads every key back.
	if err := rdb.Shutdown(ctx).Err(); err != nil && !errors.Is(err, redis.ErrClosed) && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "connection") {
		t.Fatalf("SHUTDOWN: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "appendonlydir")); err != nil {
		t.Fatalf("no AOF written: %v", err)
	}
	again := startRedisConf(t, "queue.conf", dir)
	if m, err := again.DBSize(ctx).Result(); err != nil || m != n {
		t.Errorf("after restart: %d keys (%v), want %d", m, err, n)
	}
}
