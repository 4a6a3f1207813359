package cachelab

import (
	"context"
	"image/png"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

// tinyParams sizes a run that takes seconds.
func tinyParams() params {
	return params{
		keys: 1500, zipfS: 1.0, warm: 1500, measure: 2000,
		fractions: []float64{0.2, 1.2}, workers: 4, runLimit: 20 * time.Second,
		partitions: []int{1, 2}, partFraction: 0.3, partWorkers: 4, partLimit: 20 * time.Second,
		balanceShards: []int{2}, moveMax: 2, verifyFrom: 2, deadline: 2 * time.Minute,
	}
}

func TestRunTiny(t *testing.T) {
	bin := redistest.Bin(t)
	out := filepath.Join(t.TempDir(), "plots")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := run(ctx, Config{OutDir: out, RedisServer: bin}, tinyParams())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"### Hit ratio against cache memory, by eviction policy",
		"| `allkeys-lru` |", "| `allkeys-lfu` |", "| `volatile-ttl` |", "| `allkeys-random` |", "| no eviction |",
		"### Hit ratio and latency against the number of partitions",
		"| shards | hit ratio | Get p50 |",
		"### Key balance across shards", "| shards | keys | address sets | keys max/mean |", "| yes |",
		"### Keys that move when a shard joins", "| 2 → 3 |", "Written for real",
		"### Redis bytes per cached entry", "| A, 1 record |", "| NXDOMAIN + SOA |",
		"The whole key space, 1500 keys", "| stored key + value (STRLEN) |", "| MEMORY USAGE |",
		"| used_memory growth |", "| L1: Go heap in use after GC |", "Within 1.3× of wire plus key:",
		"**Eviction policy.**", "**Shard count.**",
		"](plots/" + plotPolicies + ")",
	} {
		if !strings.Contains(rep.Markdown, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(rep.Markdown, "NaN") || strings.Contains(rep.Markdown, "Inf") {
		t.Errorf("report holds NaN or Inf:\n%s", rep.Markdown)
	}
	if len(rep.Plots) != 5 {
		t.Errorf("%d plots, want 5: %v", len(rep.Plots), rep.Plots)
	}
	for _, path := range rep.Plots {
		if filepath.Dir(path) != out {
			t.Errorf("plot %s not in %s", path, out)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width < 300 || cfg.Height < 200 {
			t.Errorf("%s: not a plot-sized PNG: %+v, %v", path, cfg, err)
		}
	}
	if n := childRedisServers(t); n != 0 {
		t.Errorf("%d redis-server processes still running after Run returned", n)
	}
	if t.Failed() {
		t.Logf("report:\n%s", rep.Markdown)
	}
}

// childRedisServers counts this process's children named redis-server
// (Linux /proc; 0 elsewhere).
func childRedisServers(t *testing.T) int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := strconv.Itoa(os.Getpid())
	n := 0
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces, so split after ')'.
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if s[open+1:closing] == "redis-server" && len(fields) > 1 && fields[1] == me {
			n++
		}
	}
	return n
}

func TestRunNeedsOutDir(t *testing.T) {
	if _, err := Run(context.Background(), Config{Quick: true}); err == nil {
		t.Error("Run without OutDir succeeded")
	}
}

// TestFleetStopsOnCancel checks that cancelling the context stops the
// redis-servers at once, without stop being called.
func TestFleetStopsOnCancel(t *testing.T) {
	bin := redistest.Bin(t)
	ctx, cancel := context.WithCancel(context.Background())
	f, err := startFleet(ctx, bin, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.stop)
	for _, s := range f.servers {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			t.Fatalf("server %s not listening: %v", s.Addr, err)
		}
		c.Close()
	}
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		if n := childRedisServers(t); n != 2 {
			t.Errorf("%d redis-server children seen, want 2", n)
		}
	}
	cancel()
	for _, s := range f.servers {
		select {
		case <-s.proc.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("redis-server on %s still running 10 s after cancel", s.Addr)
		}
		if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections", s.Addr)
		}
	}
	if n := childRedisServers(t); n != 0 {
		t.Errorf("%d redis-server children left after cancel", n)
	}
}
