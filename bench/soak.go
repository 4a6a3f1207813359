package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shardns/shardns/bench/peers"
	"github.com/shardns/shardns/bench/proc"
	"github.com/shardns/shardns/internal/testutil/dnsperf"
)

// The soak workload: the fleet arrangement (dnsd with L1, Redis×4,
// resolverd) under a fixed query rate for a long bounded run, with its
// memory, goroutines and descriptors sampled at a fixed interval, to show
// whether anything grows while the caches churn.
const (
	soakInterval    = 10 * time.Second
	soakL1          = 2000  // dnsd -l1: far below the distinct questions of a few seconds, so L1 fills and evicts
	soakRedisMemory = "8mb" // maxmemory per shard: the never-asked names fill it within minutes, then LFU evicts
	soakFreshEvery  = 20    // one question in 20 is a name never asked before (5%)
	soakMaxLines    = 8_000_000
	soakGrowthPct   = 1.0 // a slope above this % of the mean per minute, over the second half, is growth
	soakMinSecond   = 6   // samples the second half needs for a verdict
)

// soakSample is one reading of the fleet, At after the load started.
type soakSample struct {
	At                                                       time.Duration
	DnsdRSS, DnsdHeap, DnsdLive, DnsdGoroutines, DnsdFDs     float64
	ResRSS, ResHeap, ResLive, ResGoroutines                  float64
	RedisUsed, RedisKeys, RedisEvicted, RedisExpired, Shards float64 // summed over the shards
}

// soakFleet is the started arrangement and how to read it.
type soakFleet struct {
	srv        *peers.Server
	dnsd, res  *proc.Proc
	resMetrics string
	shards     []*redis.Client
}

func (f *soakFleet) close() {
	for _, c := range f.shards {
		_ = c.Close()
	}
	f.srv.Stop()
}

// soakWorkload starts the fleet, warms it with every distinct question of
// the Zipf trace, runs dnsperf at -soak-qps for -soak-duration over a trace
// of Zipf questions and never-asked names, samples the fleet every
// soakInterval and returns the RESULTS.md section.
func (b *bench) soakWorkload(ctx context.Context) (string, error) {
	file := filepath.Join(b.env.Dir, "soak.txt")
	lines := min(int(float64(b.o.soakQPS)*b.o.soakDuration.Seconds()*1.1)+1000, soakMaxLines)
	zipfLines, err := readLines(b.data.files["zipf"].trace)
	if err != nil {
		return "", err
	}
	if err := writeSoakTrace(file, zipfLines, b.data.zone.Suffix, lines); err != nil {
		return "", err
	}
	defer os.Remove(file)
	f, err := b.startSoakFleet(ctx)
	if err != nil {
		return "", err
	}
	defer f.close()

	b.log.Info("soak warm-up", "server", f.srv.Name)
	warm := b.perfRun(f.srv, b.data.files["zipf"].warm)
	warm.Duration, warm.Once = b.o.warmLimit, true
	if _, err := b.dnsperf(ctx, warm); err != nil {
		return "", fmt.Errorf("bench: soak warm-up: %w", err)
	}
	before, err := f.atRest(ctx)
	if err != nil {
		return "", err
	}
	src0, err := f.srv.Sources(ctx)
	if err != nil {
		return "", err
	}
	r := b.perfRun(f.srv, file)
	r.Duration, r.MaxQPS = b.o.soakDuration, b.o.soakQPS
	type result struct {
		st  dnsperf.Stats
		err error
	}
	done := make(chan result, 1)
	b.log.Info("soak load", "duration", b.o.soakDuration, "qps", b.o.soakQPS, "trace_lines", lines)
	start := time.Now()
	go func() {
		st, err := b.dnsperf(ctx, r)
		done <- result{st, err}
	}()
	var samples []soakSample
	var sampleErrs []string
	take := func() {
		s, err := f.sample(ctx, time.Since(start))
		if err != nil {
			b.log.Warn("soak sample", "err", err)
			sampleErrs = append(sampleErrs, err.Error())
			return
		}
		samples = append(samples, s)
		if len(samples)%6 == 1 {
			b.log.Info("soak sample", "at", s.At.Round(time.Second), "dnsd_rss_mb", int(s.DnsdRSS/mb), "dnsd_heap_mb", int(s.DnsdHeap/mb),
				"dnsd_goroutines", s.DnsdGoroutines, "redis_keys", s.RedisKeys)
		}
	}
	take()
	tick := time.NewTicker(soakInterval)
	defer tick.Stop()
	var res result
loop: // bounded by dnsperf's -l and dnsperf.Exec's deadline past it
	for {
		select {
		case res = <-done:
			break loop
		case <-tick.C:
			take()
		}
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if res.err != nil {
		return "", fmt.Errorf("bench: soak: %w", res.err)
	}
	src1, err := f.srv.Sources(ctx)
	if err != nil {
		return "", err
	}
	after, err := f.atRest(ctx)
	if err != nil {
		return "", err
	}
	alive := f.srv.Alive()
	an := analyzeSoak(samples, b.o.soakDuration)
	an.rest(before, after)
	dump := ""
	if !an.noGrowth && alive == nil && b.o.keep {
		// The goroutines dnsd holds, for the log: the Go runtime writes
		// every goroutine's stack to stderr on SIGQUIT, and exits.
		if err := syscall.Kill(f.dnsd.Pid(), syscall.SIGQUIT); err == nil {
			select {
			case <-f.dnsd.Done():
			case <-time.After(5 * time.Second):
			}
			dump = f.dnsd.LogPath
		}
	}
	plots, err := b.soakPlots(samples)
	if err != nil {
		return "", err
	}
	md := b.soakMarkdown(soakReport{
		samples: samples, analysis: an, st: res.st, sources: sourceShares(src0, src1), plots: plots,
		alive: alive, sampleErrs: sampleErrs, lines: lines, before: before, after: after, dump: dump,
	})
	b.log.Info("soak done", "verdict", an.verdict)
	return md, nil
}

// startSoakFleet starts the fleet arrangement with a small L1 and small
// Redis shards.
func (b *bench) startSoakFleet(ctx context.Context) (*soakFleet, error) {
	cfg := b.shardnsConfig(nameFleet, 4, true, soakL1)
	cfg.RedisMaxMemory = soakRedisMemory
	srv, err := b.shardnsTarget(cfg).start(ctx)
	if err != nil {
		return nil, err
	}
	f := &soakFleet{srv: srv, resMetrics: srv.ResolverdMetrics}
	for _, p := range srv.Procs {
		switch {
		case strings.HasSuffix(p.Name, "-dnsd"):
			f.dnsd = p
		case strings.HasSuffix(p.Name, "-resolverd"):
			f.res = p
		}
	}
	for _, addr := range srv.RedisAddrs {
		f.shards = append(f.shards, redis.NewClient(&redis.Options{
			Addr: addr, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
			MaxRetries: -1, DisableIdentity: true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		}))
	}
	if f.dnsd == nil || f.res == nil || len(f.shards) != 4 {
		f.close()
		return nil, errors.New("bench: soak: the fleet lacks dnsd, resolverd or its 4 shards")
	}
	return f, nil
}

// soakRest is how long the fleet rests, with no load, before a sample at
// rest: longer than dnsperf's timeout and L1's cap on an entry's life.
const soakRest = 6 * time.Second

// atRest samples the fleet after soakRest without load.
func (f *soakFleet) atRest(ctx context.Context) (soakSample, error) {
	select {
	case <-ctx.Done():
		return soakSample{}, ctx.Err()
	case <-time.After(soakRest):
	}
	return f.sample(ctx, 0)
}

// sample reads every figure of the fleet once.
func (f *soakFleet) sample(ctx context.Context, at time.Duration) (soakSample, error) {
	s := soakSample{At: at}
	var err error
	if s.DnsdRSS, err = rss(f.dnsd.Pid()); err != nil {
		return s, err
	}
	if s.ResRSS, err = rss(f.res.Pid()); err != nil {
		return s, err
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", f.dnsd.Pid()))
	if err != nil {
		return s, fmt.Errorf("bench: soak: %w", err)
	}
	s.DnsdFDs = float64(len(fds))
	if s.DnsdHeap, s.DnsdLive, s.DnsdGoroutines, err = goRuntime(ctx, f.srv.Metrics); err != nil {
		return s, err
	}
	if s.ResHeap, s.ResLive, s.ResGoroutines, err = goRuntime(ctx, f.resMetrics); err != nil {
		return s, err
	}
	for _, c := range f.shards {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		info, err := c.Info(cctx, "memory", "stats").Result()
		if err == nil {
			var n int64
			n, err = c.DBSize(cctx).Result()
			s.RedisKeys += float64(n)
		}
		cancel()
		if err != nil {
			return s, fmt.Errorf("bench: soak: redis %s: %w", c.Options().Addr, err)
		}
		fields := parseRedisInfo(info)
		s.RedisUsed += fields["used_memory"]
		s.RedisEvicted += fields["evicted_keys"]
		s.RedisExpired += fields["expired_keys"]
		s.Shards++
	}
	return s, nil
}

// goRuntime reads a Go process's heap in use, live heap (what the last
// collection marked) and goroutines from its Prometheus metrics.
func goRuntime(ctx context.Context, url string) (heap, live, goroutines float64, err error) {
	fams, err := peers.Scrape(ctx, url)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("bench: soak: %w", err)
	}
	m, err := peers.Values(fams, "go_memstats_heap_inuse_bytes", "go_gc_heap_live_bytes", "go_goroutines")
	if err != nil {
		return 0, 0, 0, fmt.Errorf("bench: soak: %w", err)
	}
	return m["go_memstats_heap_inuse_bytes"], m["go_gc_heap_live_bytes"], m["go_goroutines"], nil
}

// rss is a process's resident set size in bytes, from /proc/<pid>/status.
func rss(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: soak: %w", err)
	}
	return parseVmRSS(string(b))
}

// parseVmRSS reads the VmRSS line ("VmRSS:   12345 kB") of
// /proc/<pid>/status, in bytes.
func parseVmRSS(status string) (float64, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("bench: soak: VmRSS line %q", strings.TrimSpace(line))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: soak: VmRSS: %w", err)
		}
		return float64(kb) * 1024, nil
	}
	return 0, errors.New("bench: soak: no VmRSS line")
}

// parseRedisInfo reads the numeric "field:value" lines of INFO.
func parseRedisInfo(info string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[k] = f
		}
	}
	return out
}

// readLines reads a text file's lines.
func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	out := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(out) == 0 || out[0] == "" {
		return nil, fmt.Errorf("bench: %s is empty", path)
	}
	return out, nil
}

// writeSoakTrace writes n dnsperf lines: the Zipf trace's lines in turn,
// looping, with every soakFreshEvery-th line an A question for a name
// under suffix that no line before asked (and that does not exist:
// NXDOMAIN, cached for the zone's negative TTL).
func writeSoakTrace(path string, zipf []string, suffix string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	err = soakTrace(f, zipf, suffix, n)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("bench: %w", cerr)
	}
	return err
}

func soakTrace(w io.Writer, zipf []string, suffix string, n int) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	z, fresh := 0, 0
	for i := range n {
		if i%soakFreshEvery == soakFreshEvery-1 {
			fmt.Fprintf(bw, "soak%08d.%s A\n", fresh, suffix)
			fresh++
			continue
		}
		bw.WriteString(zipf[z%len(zipf)])
		bw.WriteByte('\n')
		z++
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("bench: soak trace: %w", err)
	}
	return nil
}
