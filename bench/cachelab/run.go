// Package cachelab answers the cache questions of shardns with
// measurements on real redis-server processes on loopback, written and
// read through internal/cache exactly as the query path does: hit ratio
// against memory for each eviction policy, hit ratio and latency over 1 to
// 8 partitions at the same total memory, key balance across shards, the
// keys that move when a shard joins, and the bytes Redis spends per entry.
package cachelab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"time"
)

// Config says how to run the experiments.
type Config struct {
	// Quick runs smaller traces and fewer memory sizes: under a minute
	// instead of about 3 on two cores (past 4 and 15 minutes it fails).
	Quick bool
	// OutDir is where PNG plots go. The Markdown links them as
	// <base of OutDir>/<file>, that is relative to OutDir's parent folder,
	// where RESULTS.md is expected.
	OutDir string
	// RedisServer is the path to redis-server ("" looks it up on PATH).
	RedisServer string
	// Names are the zone's names (FQDN), used as the names that exist;
	// if empty, names are generated.
	Names []string
	// Log receives progress (nil: discarded).
	Log *slog.Logger
}

// Report is what the experiments found.
type Report struct {
	// Markdown holds the sections for RESULTS.md: a table, a plot and a
	// line of method per question, then the recommendation.
	Markdown string
	// Plots are the paths of the PNG files written.
	Plots []string
}

// params sizes one run of the experiments.
type params struct {
	keys      int       // key space
	zipfS     float64   // Zipf exponent
	warm      int       // requests replayed before measuring
	measure   int       // requests measured
	fractions []float64 // memory budgets, as fractions of the working set
	workers   int       // requests in flight in experiment 1
	runLimit  time.Duration

	partitions   []int
	partFraction float64 // total memory of experiment 2, over the working set
	partWorkers  int
	partLimit    time.Duration

	balanceShards []int
	moveMax       int // shard counts N for N→N+1 go from 1 to this
	verifyFrom    int // N of the move measured with real writes

	deadline time.Duration // the whole run fails past this
}

// quickParams and fullParams are sized for 10 to 25 thousand cache
// requests a second, what two cores reach with client and servers on the
// same machine: under 1 and about 3 minutes. Each measured part stops at its
// limit (and is marked so); the deadline bounds the whole.
func quickParams() params {
	return params{
		keys: 40_000, zipfS: 1.0, warm: 20_000, measure: 30_000,
		fractions: []float64{0.05, 0.15, 0.35, 0.7, 1.2},
		workers:   8, runLimit: 5 * time.Second,
		partitions: []int{1, 2, 4, 8}, partFraction: 0.25, partWorkers: 16, partLimit: 6 * time.Second,
		balanceShards: []int{2, 4, 8}, moveMax: 8, verifyFrom: 4,
		deadline: 4 * time.Minute,
	}
}

func fullParams() params {
	return params{
		keys: 200_000, zipfS: 1.0, warm: 60_000, measure: 90_000,
		fractions: []float64{0.03, 0.06, 0.1, 0.2, 0.35, 0.5, 0.75, 1.2},
		workers:   8, runLimit: 12 * time.Second,
		partitions: []int{1, 2, 4, 8}, partFraction: 0.25, partWorkers: 16, partLimit: 20 * time.Second,
		balanceShards: []int{2, 4, 8}, moveMax: 8, verifyFrom: 4,
		deadline: 15 * time.Minute,
	}
}

// Seeds of the key space and of the trace: every run replays the same.
const (
	universeSeed = 1
	traceSeed    = 2
)

// Run runs the five experiments and writes their plots into cfg.OutDir.
// Every redis-server it starts is stopped before it returns, and at once
// when ctx is done.
func Run(ctx context.Context, cfg Config) (Report, error) {
	p := fullParams()
	if cfg.Quick {
		p = quickParams()
	}
	return run(ctx, cfg, p)
}

func run(ctx context.Context, cfg Config, p params) (Report, error) {
	if p.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.deadline)
		defer cancel()
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.OutDir == "" {
		return Report{}, errors.New("cachelab: no OutDir")
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return Report{}, fmt.Errorf("cachelab: %w", err)
	}
	bin := cfg.RedisServer
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return Report{}, fmt.Errorf("cachelab: redis-server: %w", err)
		}
	}
	logf := func(msg string, args ...any) { log.Info(msg, args...) }
	start := time.Now()

	items, err := buildUniverse(p.keys, cfg.Names, universeSeed)
	if err != nil {
		return Report{}, err
	}
	trace, err := zipfTrace(len(items), p.warm+p.measure, p.zipfS, traceSeed)
	if err != nil {
		return Report{}, err
	}
	servers := max(p.moveMax+1, p.verifyFrom+1, 1)
	for _, n := range slices.Concat(p.partitions, p.balanceShards) {
		servers = max(servers, n)
	}
	f, err := startFleet(ctx, bin, servers)
	if err != nil {
		return Report{}, err
	}
	defer f.stop()
	logf("cache experiments: started", "redis_servers", servers, "keys", len(items), "requests", len(trace))

	res := &results{params: p, keys: len(items), names: len(cleanNames(cfg.Names))}
	if res.redisVersion, err = f.servers[0].version(ctx); err != nil {
		return Report{}, err
	}
	if res.policy, err = runPolicies(ctx, p, f.servers[0], items, trace, logf); err != nil {
		return Report{}, err
	}
	total := int64(p.partFraction * float64(res.policy.WorkingSet))
	if res.part, err = runPartitions(ctx, p, f, items, trace, total, logf); err != nil {
		return Report{}, err
	}
	if res.balance.Balance, err = runBalance(ctx, p, f, items, trace); err != nil {
		return Report{}, err
	}
	res.balance.VerifyFrom = p.verifyFrom
	if res.balance.Moves, res.balance.Verified, err = runMoves(ctx, p, f, items); err != nil {
		return Report{}, err
	}
	if res.bytes.Samples, err = runBytes(ctx, f.servers[0]); err != nil {
		return Report{}, err
	}
	if res.bytes.All, err = runAggregate(ctx, f.servers[0], items, p.workers); err != nil {
		return Report{}, err
	}
	d := distinctItems(items, trace)
	sum := 0
	for _, it := range d {
		sum += len(it.Msg) + len(it.Key)
	}
	res.bytes.Keys = len(d)
	res.bytes.MeanWireKey = float64(sum) / float64(len(d))
	res.bytes.PerKeyUsed = float64(res.policy.WorkingSet) / float64(len(d))
	res.elapsed = time.Since(start)
	logf("cache experiments: done", "took", res.elapsed.Round(time.Second))

	plots, err := res.plot(cfg.OutDir)
	if err != nil {
		return Report{}, err
	}
	return Report{Markdown: res.markdown(cfg.OutDir), Plots: plots}, nil
}

// results gathers every experiment's outcome.
type results struct {
	params       params
	keys         int
	names        int // names given in Config.Names that were used
	redisVersion string
	elapsed      time.Duration
	policy       *policyResult
	part         *partitionResult
	balance      balanceResult
	bytes        bytesResult
}
