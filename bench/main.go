// Command bench measures shardns against the DNS servers people would
// otherwise pick, in one run on loopback: it builds dnsd and resolverd,
// serves a generated zone with nsd, starts Unbound, dnsmasq, CoreDNS, a
// fixed-answer miekg/dns server and shardns in several arrangements as
// caching forwarders to that nsd, drives each with dnsperf over the same traces,
// and writes bench/RESULTS.md and PNG plots in bench/plots.
//
//	cd bench
//	go run . -quick      # a few minutes
//	go run .             # the full run
//
// Relative paths in flags are taken from the bench folder. See
// bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/shardns/shardns/bench/cachelab"
)

// options are bench's flags.
type options struct {
	quick        bool
	names        int
	zipfS        float64
	nxShare      float64
	traceLen     int
	duration     time.Duration
	rounds       int
	latDuration  time.Duration
	latQPS       int
	warmLimit    time.Duration
	clients      int
	outstanding  int
	maxQPS       int
	timeout      time.Duration
	csvPath      string
	results      string
	plots        string
	pin          bool
	seed         uint64
	workloads    string
	servers      string
	keep         bool
	genCSV       string
	dnsmasqCache int
	coredns      string
	logLevel     string
	queueNames   int
	queueDelay   time.Duration
	soakDuration time.Duration
	soakQPS      int
}

// scale holds the defaults that -quick changes.
type scale struct {
	names, traceLen, latQPS, rounds int
	duration, lat, warmLimit        time.Duration
	queueNames                      int // names per job of the queue workload
}

// fullScale is the scale of a full run.
func fullScale() scale {
	return scale{names: 100_000, traceLen: 1_000_000, latQPS: 2000, rounds: 3, duration: 10 * time.Second, lat: 10 * time.Second, warmLimit: 120 * time.Second, queueNames: 400}
}

// quickScale is the scale of -quick.
func quickScale() scale {
	return scale{names: 10_000, traceLen: 100_000, latQPS: 1000, rounds: 2, duration: 2 * time.Second, lat: 2 * time.Second, warmLimit: 20 * time.Second, queueNames: 80}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "short runs over a smaller zone: finishes in a few minutes")
	fs.IntVar(&o.names, "names", fullScale().names, "names in the generated zone (-quick: 10000)")
	fs.Float64Var(&o.zipfS, "zipf-s", 1.0, "exponent of the Zipf trace (resolver traffic measures 0.9 to 1.2)")
	fs.Float64Var(&o.nxShare, "nx-share", 0.05, "share of queries in generated traces for names that do not exist (NXDOMAIN)")
	fs.IntVar(&o.traceLen, "trace-len", fullScale().traceLen, "queries in each generated trace file; dnsperf loops over it (-quick: 100000)")
	fs.DurationVar(&o.duration, "duration", fullScale().duration, "length of each full-load run (dnsperf -l) (-quick: 2s)")
	fs.IntVar(&o.rounds, "rounds", fullScale().rounds, "full-load rounds per server, each round driving every server of a workload in turn; figures are the rounds' medians (-quick: 2)")
	fs.DurationVar(&o.latDuration, "lat-duration", fullScale().lat, "length of each latency run at -lat-qps (-quick: 2s)")
	fs.IntVar(&o.latQPS, "lat-qps", fullScale().latQPS, "fixed query rate of the latency runs, whose per-query latencies give the percentiles (-quick: 1000)")
	fs.DurationVar(&o.warmLimit, "warm-limit", fullScale().warmLimit, "longest warm-up pass (every question of the trace once) before a warm-cache run (-quick: 20s)")
	fs.IntVar(&o.clients, "clients", 4, "dnsperf -c: client sockets")
	fs.IntVar(&o.outstanding, "outstanding", 100, "dnsperf -q: queries in flight at most")
	fs.IntVar(&o.maxQPS, "max-qps", 0, "dnsperf -Q for full-load runs; 0: as fast as dnsperf can")
	fs.DurationVar(&o.timeout, "timeout", time.Second, "dnsperf -t: a query unanswered this long counts as lost")
	fs.StringVar(&o.csvPath, "csv", "testdata/names.csv", "CSV of domain names to replay (name[,type] or rank,name per row); names outside the generated suffix are added to the zone")
	fs.StringVar(&o.results, "results", "RESULTS.md", "where to write the report")
	fs.StringVar(&o.plots, "plots", "plots", "folder for the PNG plots")
	fs.BoolVar(&o.pin, "pin", true, "with 2 or more CPUs: pin dnsperf to CPU 0 and the servers to the others (taskset)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the zone and the traces")
	fs.StringVar(&o.workloads, "workloads", "zipf,uniform,csv,miss,shards,cache,queue,recurse,soak", "comma list of workloads to run; cache is the cache experiments of bench/cachelab, queue the work queue's tasks per second by worker count, recurse misses resolved from a fake root by shardns and Unbound and a second resolverd's cold start, soak the fleet's memory over a long run at a fixed rate")
	fs.StringVar(&o.servers, "servers", "", "comma list of words; run only servers whose name holds one (default: all)")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch folder (configurations, traces, server logs)")
	fs.StringVar(&o.genCSV, "gen-csv", "", "write a sample CSV of names drawn from the zone (Zipf) to this file and exit")
	fs.IntVar(&o.dnsmasqCache, "dnsmasq-cache", 0, "dnsmasq --cache-size; 0: room for every record of the zone")
	fs.StringVar(&o.coredns, "coredns", "", "CoreDNS binary to compare; empty: build "+coreDNSModule+" once into the user's cache folder; off: leave CoreDNS out")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.IntVar(&o.queueNames, "queue-names", fullScale().queueNames, "distinct names in each measured job of the queue workload (-quick: 80)")
	fs.DurationVar(&o.queueDelay, "queue-delay", 20*time.Millisecond, "how long the queue workload's upstream takes per answer")
	fs.DurationVar(&o.soakDuration, "soak-duration", 10*time.Minute, "length of the soak workload's load run (also with -quick); at most 1h")
	fs.IntVar(&o.soakQPS, "soak-qps", 10_000, "fixed query rate of the soak workload (dnsperf -Q)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		q := quickScale()
		for name, apply := range map[string]func(){
			"names": func() { o.names = q.names }, "trace-len": func() { o.traceLen = q.traceLen },
			"duration": func() { o.duration = q.duration }, "lat-duration": func() { o.latDuration = q.lat },
			"lat-qps": func() { o.latQPS = q.latQPS }, "warm-limit": func() { o.warmLimit = q.warmLimit },
			"rounds": func() { o.rounds = q.rounds }, "queue-names": func() { o.queueNames = q.queueNames },
		} {
			if !set[name] {
				apply()
			}
		}
	}
	switch {
	case o.names < 100:
		return o, errors.New("bench: -names must be at least 100")
	case o.zipfS <= 0 || o.zipfS > 3:
		return o, errors.New("bench: -zipf-s must be in (0, 3]")
	case o.nxShare < 0 || o.nxShare >= 1:
		return o, errors.New("bench: -nx-share must be in [0, 1)")
	case o.duration <= 0 || o.latDuration <= 0 || o.warmLimit <= 0 || o.timeout <= 0:
		return o, errors.New("bench: durations must be positive")
	case o.duration > time.Hour || o.latDuration > time.Hour:
		return o, errors.New("bench: runs are bounded to an hour")
	case o.rounds < 1 || o.rounds > 20:
		return o, errors.New("bench: -rounds must be in [1, 20]")
	case o.latQPS < 1 || o.clients < 1 || o.outstanding < 1 || o.traceLen < 1000:
		return o, errors.New("bench: -lat-qps, -clients, -outstanding must be positive and -trace-len at least 1000")
	case o.queueNames < 10 || o.queueNames > 100_000:
		return o, errors.New("bench: -queue-names must be in [10, 100000]")
	case o.queueDelay < time.Millisecond || o.queueDelay > time.Second:
		return o, errors.New("bench: -queue-delay must be in [1ms, 1s]")
	case o.soakDuration < 30*time.Second || o.soakDuration > time.Hour:
		return o, errors.New("bench: -soak-duration must be in [30s, 1h]")
	case o.soakQPS < 100 || o.soakQPS > 200_000:
		return o, errors.New("bench: -soak-qps must be in [100, 200000]")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "bench: -log-level:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		if ctx.Err() != nil {
			log.Error("bench interrupted; everything it started is stopped")
		} else {
			log.Error("bench failed", "err", err)
		}
		stop()
		os.Exit(1)
	}
}

// cacheExperiments runs the cache experiments (eviction policies, partition
// counts, key balance and movement, bytes per entry) on the run's zone
// names and returns their RESULTS.md sections, which link their own plots.
func (b *bench) cacheExperiments(ctx context.Context) (string, error) {
	lab, err := cachelab.Run(ctx, cachelab.Config{Quick: b.o.quick, OutDir: b.o.plots, RedisServer: b.tools.redis, Names: b.data.zone.Owners(), Log: b.log})
	if err != nil {
		return "", fmt.Errorf("bench: cache experiments: %w", err)
	}
	b.log.Info("cache experiments done", "plots", len(lab.Plots))
	return lab.Markdown, nil
}

// commandLine is how the run was invoked, for the report.
func commandLine() string {
	return strings.TrimSpace("cd bench && go run . " + strings.Join(os.Args[1:], " "))
}
