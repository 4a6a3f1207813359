package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/shardns/shardns/bench/peers"
	"github.com/shardns/shardns/bench/proc"
	"github.com/shardns/shardns/bench/report"
	"github.com/shardns/shardns/bench/trace"
)

// bench is one run: its options, tools, binaries, data and upstream.
type bench struct {
	o          options
	log        *slog.Logger
	tools      tools
	bins       binaries
	env        peers.Env
	nsd        *peers.Server
	data       *dataset
	loadPrefix []string // put before dnsperf (CPU pinning)
	dirs       folders
	loadBefore string // load averages when the run started
}

// workload is a trace run against a list of servers.
type workload struct {
	key, files, title, about string
	cold                     bool // every question once on a fresh server, no warm-up
	targets                  func() []target
}

func (b *bench) workloads() []workload {
	o, d := b.o, b.data
	warmNote := fmt.Sprintf("All servers start fresh and are warmed with every distinct question of the trace once; "+
		"then %d full-load rounds each drive every server in turn (figures are the rounds' medians); "+
		"latency percentiles come from a last run at a fixed moderate rate.", o.rounds)
	return []workload{
		{key: "zipf", files: "zipf", title: fmt.Sprintf("Zipf trace (s = %.2g), warm caches", o.zipfS), targets: b.peerTargets,
			about: fmt.Sprintf("%d queries drawn by Zipf (exponent %.2g) over the %d generated names, %.0f%% for names that do not exist; %d distinct questions. %s",
				d.files["zipf"].queries, o.zipfS, o.names, 100*o.nxShare, d.files["zipf"].unique, warmNote)},
		{key: "uniform", files: "uniform", title: "Uniform trace, warm caches", targets: b.peerTargets,
			about: fmt.Sprintf("%d queries drawn uniformly over the same names, %.0f%% NXDOMAIN; %d distinct questions. %s",
				d.files["uniform"].queries, 100*o.nxShare, d.files["uniform"].unique, warmNote)},
		{key: "csv", files: "csv", title: "CSV replay, warm caches", targets: b.peerTargets,
			about: fmt.Sprintf("The %d rows of `%s` replayed in order, looping; %d distinct questions, %d names added to the zone from the CSV. %s",
				d.csvRows, b.displayPath(o.csvPath), d.files["csv"].unique, d.csvExtra, warmNote)},
		{key: "miss", files: "miss", title: "Misses: cold caches, no question repeated", cold: true, targets: b.missTargets,
			about: fmt.Sprintf("Every name of the zone and every NX name, each with %d query types, each question once (%d questions), on freshly started servers: "+
				"every query is a cache miss forwarded to nsd. The %d latency rounds come first, and each of them and of the %d full-load rounds has questions of its own.",
				len(missTypes()), d.files["miss"].queries, o.rounds, o.rounds)},
		{key: "shards", files: "zipf", title: "shardns Redis shards, L1 off (Zipf trace, warm)", targets: b.shardTargets,
			about: "dnsd with L1 off, so every answer comes from the owning Redis shard (go-redis Ring), misses through resolverd; " +
				"1, 2, 4 and 8 shards on the same machine. Unbound's Zipf row is repeated for the ratios."},
	}
}

// missTargets are the peers except the fixed-answer server, which has no
// misses, and a chain of Unbounds that hands each miss on as many times as
// the fleet does: what those hand-offs alone cost on this machine.
func (b *bench) missTargets() []target {
	var out []target
	for _, t := range b.peerTargets() {
		if t.name != nameFixed {
			out = append(out, t)
		}
	}
	chain := target{name: nameChain, caches: true, start: func(ctx context.Context) (*peers.Server, error) {
		return peers.UnboundChain(ctx, b.env, b.tools.unbound, b.nsd, fleetHops, b.data.probe)
	}}
	return append(out, b.filter([]target{chain})...)
}

func (b *bench) selected(key string) bool {
	for w := range strings.SplitSeq(b.o.workloads, ",") {
		if strings.TrimSpace(w) == key {
			return true
		}
	}
	return false
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	started, loadBefore := time.Now(), report.LoadAvg()
	dirs, err := findFolders(ctx)
	if err != nil {
		return err
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dirs.bench, p)
	}
	o.csvPath, o.results, o.plots, o.genCSV = abs(o.csvPath), abs(o.results), abs(o.plots), abs(o.genCSV)
	if o.genCSV != "" {
		return writeSampleCSV(o, log)
	}
	tl, err := findTools()
	if err != nil {
		return err
	}
	if tl.coredns, err = coreDNS(ctx, o.coredns, log); err != nil {
		log.Warn("CoreDNS left out of the run", "err", err)
	}
	dir, err := os.MkdirTemp("", "shardns-bench-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if o.keep {
		log.Info("scratch folder kept", "dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	group := proc.NewGroup(logs, log)
	defer group.StopAll()

	log.Info("building dnsd, resolverd, cacheapi, fixeddns")
	bins, err := build(ctx, dirs, dir)
	if err != nil {
		return err
	}
	log.Info("generating zone and traces", "names", o.names, "trace_len", o.traceLen)
	data, err := prepare(o, o.csvPath, dir)
	if err != nil {
		return err
	}
	loadPrefix, serverPrefix := pinning(o, tl)
	b := &bench{o: o, log: log, tools: tl, bins: bins, data: data, loadPrefix: loadPrefix, dirs: dirs, loadBefore: loadBefore,
		env: peers.Env{Group: group, Dir: dir, Prefix: serverPrefix}}
	if b.nsd, err = peers.NSD(ctx, b.env, tl.nsd, data.zonePath, data.probe); err != nil {
		return err
	}
	log.Info("nsd serving the zone", "addr", b.nsd.Addr, "names", len(data.zone.Names))
	runs, warm := b.estimate()
	log.Info("time estimate", "load_runs", runs.Round(time.Second), "warm_ups_at_most", warm.Round(time.Second))

	var tables []report.Table
	for _, w := range b.workloads() {
		if !b.selected(w.key) {
			continue
		}
		t, err := b.runWorkload(ctx, w)
		if err != nil {
			return err
		}
		tables = append(tables, t)
	}
	tables = addReferenceRows(tables)

	var labMD string
	if b.selected("cache") {
		log.Info("cache experiments")
		if labMD, err = b.cacheExperiments(ctx); err != nil {
			return err
		}
	}
	if b.selected("queue") {
		log.Info("queue workload", "estimate", b.queueEstimate().Round(time.Second))
		queueMD, err := b.queueWorkload(ctx)
		if err != nil {
			return err
		}
		labMD = strings.TrimSpace(labMD + "\n\n" + queueMD)
	}
	if b.selected("recurse") {
		log.Info("recursion workload", "estimate", b.recurseEstimate().Round(time.Second))
		recMD, err := b.recurseWorkload(ctx)
		if err != nil {
			return err
		}
		labMD = strings.TrimSpace(labMD + "\n\n" + recMD)
	}
	if b.selected("soak") {
		log.Info("soak workload", "duration", o.soakDuration, "qps", o.soakQPS)
		soakMD, err := b.soakWorkload(ctx)
		if err != nil {
			return err
		}
		labMD = strings.TrimSpace(labMD + "\n\n" + soakMD)
	}
	return b.writeResults(ctx, started, tables, labMD)
}

// pinning returns the command prefixes that put dnsperf on CPU 0 and the
// servers on the other CPUs, when asked for and possible.
func pinning(o options, t tools) (load, servers []string) {
	n := runtime.NumCPU()
	if !o.pin || n < 2 || t.taskset == "" {
		return nil, nil
	}
	cpus := "1"
	if n > 2 {
		cpus = fmt.Sprintf("1-%d", n-1)
	}
	return []string{t.taskset, "-c", "0"}, []string{t.taskset, "-c", cpus}
}

// estimate is how long the selected load runs take, warm-ups aside, and
// how long the warm-ups may take at most.
func (b *bench) estimate() (runs, warmBound time.Duration) {
	for _, w := range b.workloads() {
		if !b.selected(w.key) {
			continue
		}
		n := time.Duration(len(w.targets()))
		runs += n * (time.Duration(b.o.rounds)*(b.o.duration+b.o.latDuration+2*time.Second) + perRunOverhead)
		if !w.cold {
			warmBound += n * b.o.warmLimit
		}
	}
	return runs, warmBound
}

// writeSampleCSV writes the sample CSV of -gen-csv.
func writeSampleCSV(o options, log *slog.Logger) error {
	qs, err := sampleCSV(o, 2000)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.genCSV), 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	f, err := os.Create(o.genCSV)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	err = trace.WriteCSV(f, qs)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("bench: %w", cerr)
	}
	if err == nil {
		log.Info("sample CSV written", "file", o.genCSV, "rows", len(qs))
	}
	return err
}

// displayPath shows p relative to the repository's folder when it lies
// inside.
func (b *bench) displayPath(p string) string {
	if rel, err := filepath.Rel(b.dirs.repo, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}
