package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shardns/shardns/bench/report"
)

// loadKeys are the workloads the closing table and the plots compare
// servers over.
func loadKeys() []string { return []string{"zipf", "uniform", "csv", "miss"} }

func tableOf(tables []report.Table, key string) (report.Table, bool) {
	for _, t := range tables {
		if t.Key == key {
			return t, true
		}
	}
	return report.Table{}, false
}

func rowOf(t report.Table, server string) (report.Row, bool) {
	for _, r := range t.Rows {
		if r.Server == server {
			return r, true
		}
	}
	return report.Row{}, false
}

// addMissOverhead says, in the misses section, what each server adds to a
// direct upstream query: its latency percentiles minus those of the same
// questions sent straight to nsd in the same run, and their ratio; shardns
// first, then the peers. It then sets the fleet beside the Unbound chain,
// whose misses are handed on as many times.
func addMissOverhead(tables []report.Table) {
	for i, t := range tables {
		if t.Key != "miss" {
			continue
		}
		nsd, ok := rowOf(t, nameNSD)
		if !ok || !hasLatency(nsd) {
			return
		}
		var ours, others []string
		for _, r := range t.Rows {
			if r.Server == nameNSD || !hasLatency(r) {
				continue
			}
			added := fmt.Sprintf("%s: %+d µs at p50 (%.2f× NSD), %+d µs at p99 (%.2f× NSD)", r.Server,
				(r.P50 - nsd.P50).Microseconds(), float64(r.P50)/float64(nsd.P50),
				(r.P99 - nsd.P99).Microseconds(), float64(r.P99)/float64(nsd.P99))
			if strings.HasPrefix(r.Server, "shardns") {
				ours = append(ours, added)
			} else {
				others = append(others, added)
			}
		}
		if len(ours) > 0 {
			tables[i].About += " Added to a direct upstream query (each latency minus that of the same questions sent straight to nsd in this run): " +
				strings.Join(ours, "; ") + "."
		}
		if len(others) > 0 {
			tables[i].About += " The peers add " + strings.Join(others, "; ") + "."
		}
		fleet, okFleet := rowOf(t, nameFleet)
		chain, okChain := rowOf(t, nameChain)
		if okFleet && okChain && hasLatency(fleet) && hasLatency(chain) {
			tables[i].About += fmt.Sprintf(" The fleet hands a miss on through %d processes before nsd (dnsd, a Redis shard, resolverd), the chain through %d Unbounds: "+
				"beside the chain, the fleet takes %+d µs at p50 and %+d µs at p99.", fleetHops, fleetHops, (fleet.P50 - chain.P50).Microseconds(), (fleet.P99 - chain.P99).Microseconds())
		}
	}
}

// hasLatency says whether r ran and has both percentiles.
func hasLatency(r report.Row) bool { return r.Err == "" && r.P50 > 0 && r.P99 > 0 }

// addReferenceRows puts Unbound's Zipf row into the shard sweep, for its
// ratios, says what misses add to a direct upstream query, and adds the
// table of shardns's paths gathered from the others.
func addReferenceRows(tables []report.Table) []report.Table {
	addMissOverhead(tables)
	zipf, _ := tableOf(tables, "zipf")
	miss, _ := tableOf(tables, "miss")
	unbound, hasUnbound := rowOf(zipf, nameUnbound)
	for i, t := range tables {
		if t.Key == "shards" && hasUnbound {
			tables[i].Rows = append([]report.Row{unbound}, t.Rows...)
		}
	}
	if !slices.ContainsFunc(append(zipf.Rows, miss.Rows...), func(r report.Row) bool {
		return strings.HasPrefix(r.Server, "shardns")
	}) {
		return tables // no shardns run to gather
	}
	paths := report.Table{
		Key: "paths", Title: "shardns by path", Baseline: baseline,
		About: "The same runs as above, gathered by where shardns's answers come from (the last column, from dnsd's own counters). " +
			"Hits are the Zipf trace with warm caches; misses are the cold-cache trace. Ratios divide by Unbound on the Zipf trace; " +
			"Unbound's misses are repeated for comparison. With Redis behind it, an L1 copy lives at most 5 s, so some L1-on answers come from Redis.",
	}
	add := func(t report.Table, server, label string) {
		if r, ok := rowOf(t, server); ok {
			r.Server = label
			paths.Rows = append(paths.Rows, r)
		}
	}
	add(zipf, nameUnbound, nameUnbound)
	add(zipf, nameAIO, "L1 hits: all-in-one")
	add(zipf, nameFleet, "L1 hits: L1 + Redis×4 + resolverd")
	add(zipf, nameRedis, "Redis hits: L1 off, Redis×4")
	add(miss, nameFleet, "misses through resolverd (L1 + Redis×4, cold)")
	add(miss, nameAIO, "misses, all-in-one (in-process resolver, cold)")
	add(miss, nameUnbound, "Unbound, misses (cold)")
	return append(tables, paths)
}

// writeResults writes RESULTS.md and the plots.
func (b *bench) writeResults(ctx context.Context, started time.Time, tables []report.Table, extraMD string) error {
	if err := os.MkdirAll(b.o.plots, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(b.o.results), 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	plots, err := b.plot(tables)
	if err != nil {
		return err
	}
	rel := make([]string, 0, len(plots))
	for _, p := range plots {
		r, err := filepath.Rel(filepath.Dir(b.o.results), p)
		if err != nil {
			r = p
		}
		rel = append(rel, filepath.ToSlash(r))
	}
	m := report.ReadMachine()
	m.Versions = b.tools.versions(ctx)
	m.LoadBefore, m.LoadAfter = b.loadBefore, report.LoadAvg()
	var load []report.Table
	for _, k := range loadKeys() {
		if t, ok := tableOf(tables, k); ok {
			load = append(load, t)
		}
	}
	title := "shardns against its peers"
	if b.o.quick {
		title += " (quick run: short and small, indicative only)"
	}
	res := report.Results{
		Title: title, Command: commandLine(), Started: started, Elapsed: time.Since(started),
		Machine: m, Settings: b.settings(), Tables: tables, Notes: b.notes(), Extra: extraMD, Plots: rel,
		Headline: report.Summary("Headline", load, baseline),
	}
	f, err := os.Create(b.o.results)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	err = report.WriteMarkdown(f, res)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("bench: %w", cerr)
	}
	if err != nil {
		return err
	}
	b.log.Info("results written", "file", b.o.results, "plots", len(plots), "elapsed", time.Since(started).Round(time.Second))
	if len(res.Headline.Rows) > 0 {
		fmt.Print(res.Headline.Markdown())
	}
	return nil
}

func (b *bench) settings() [][2]string {
	o, d := b.o, b.data
	pin := "no"
	if len(b.loadPrefix) > 0 {
		pin = "dnsperf on CPU 0, every server on the other CPUs (taskset)"
	}
	return [][2]string{
		{"zone", fmt.Sprintf("%d generated names under `%s` (10%% CNAMEs to other names, 30%% with AAAA, 5%% MX, 5%% TXT; TTLs 30 s to 1 day, mostly 300 s and 1 h) plus %d from the CSV; negative TTL %d s; served by nsd as the root zone",
			o.names, d.zone.Suffix, d.csvExtra, 300)},
		{"query types", "A 70%, AAAA 25%, TXT 3%, MX 2% (Zipf, uniform); misses: " + strconv.Itoa(len(missTypes())) + " types per name"},
		{"full-load run", fmt.Sprintf("dnsperf -l %s -c %d -q %d -t %s -T 1%s; %d rounds per server, interleaved across servers; medians reported",
			secs(o.duration), o.clients, o.outstanding, secs(o.timeout), qpsCap(o.maxQPS), o.rounds)},
		{"latency run", fmt.Sprintf("dnsperf -l %s -Q %d -v; %d rounds per server, interleaved across servers; percentiles over every answered query of all rounds", secs(o.latDuration), o.latQPS, o.rounds)},
		{"warm-up", fmt.Sprintf("every distinct question of the trace once (dnsperf -n 1), at most %s s", secs(o.warmLimit))},
		{"CPU pinning", pin},
		{"Unbound", "1 thread, forward-zone \".\" to nsd, module-config \"iterator\" (no validation), msg 256 MB, rrset 512 MB"},
		{"dnsmasq", "--no-resolv --server=nsd, cache-size " + strconv.Itoa(b.dnsmasqCache())},
		{"CoreDNS", coreDNSSetting(b.tools.coredns, b.l1Size())},
		{"NSD", "1 server process, RRL off"},
		{"shardns", fmt.Sprintf("dnsd -l1 %d (or 0), -min-ttl 0; Redis shards maxmemory 1 GB allkeys-lfu, no persistence; resolverd -upstream nsd", b.l1Size())},
	}
}

func (b *bench) dnsmasqCache() int {
	if b.o.dnsmasqCache > 0 {
		return b.o.dnsmasqCache
	}
	return 10 * len(b.data.zone.Names)
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

func qpsCap(q int) string {
	if q <= 0 {
		return ""
	}
	return fmt.Sprintf(" -Q %d", q)
}

func (b *bench) notes() []string {
	return []string{
		"## How to read this\n\n" +
			"- **qps**: answered queries per second at full load, as dnsperf counts them, the median of the rounds; **qps range** is the " +
			"slowest and fastest round. dnsperf and the servers share this machine, " +
			"so NSD answering directly from its zone is the ceiling of what the load generator can drive here.\n" +
			"- **p50, p99**: latency percentiles of every answered query in the latency rounds at a fixed moderate rate (dnsperf -v), " +
			"so they show the path's own delay, not queueing at saturation; **mean at full load** is dnsperf's average during the full-load run.\n" +
			"- **CPU µs/query**: user + system CPU time of every process of the server under test (from /proc/<pid>/stat, all threads, " +
			"all processes of its process group) during each full-load round, divided by the answered queries; the median of the rounds. For shardns that is dnsd " +
			"plus resolverd plus every Redis shard; the upstream nsd is not counted for any forwarder.\n" +
			"- **×Unbound**: the figure divided by Unbound's in the same table. For qps higher is better; for latency and CPU lower is better.\n" +
			"- **lost**: queries dnsperf sent that were not answered within its timeout.\n" +
			"- Warm-cache runs still see some misses: names with 30 s and 60 s TTLs expire during a run.",
	}
}

// plot draws the comparison plots and returns their paths.
func (b *bench) plot(tables []report.Table) ([]string, error) {
	var out []string
	dir := b.o.plots
	var load []report.Table
	for _, k := range loadKeys() {
		if t, ok := tableOf(tables, k); ok {
			load = append(load, t)
		}
	}
	if len(load) > 0 {
		servers := serverOrder(load)
		qps := seriesOf(load, servers, func(r report.Row) float64 { return r.QPS / 1000 })
		cpu := seriesOf(load, servers, func(r report.Row) float64 { return float64(r.CPUPerQuery) / 1e3 })
		for _, p := range []struct {
			file, title, x string
			s              []report.Series
		}{
			{"qps.png", "Answered queries per second (thousands), full load", "thousand queries/s", qps},
			{"cpu.png", "Server CPU per answered query", "µs of CPU per query", cpu},
		} {
			f := filepath.Join(dir, p.file)
			if err := report.Bars(f, p.title, p.x, servers, p.s); err != nil {
				return nil, err
			}
			out = append(out, f)
		}
		lat := load[0]
		names := serverOrder([]report.Table{lat})
		for _, p := range []struct {
			file, name string
			pct        func(report.Row) time.Duration
		}{
			{"latency-p50.png", "p50", func(r report.Row) time.Duration { return r.P50 }},
			{"latency-p99.png", "p99", func(r report.Row) time.Duration { return r.P99 }},
		} {
			s := []report.Series{{Name: p.name, Values: valuesOf(lat, names, func(r report.Row) float64 { return float64(p.pct(r)) / 1e3 })}}
			f := filepath.Join(dir, p.file)
			title := fmt.Sprintf("%s latency at %d queries/s, %s trace", p.name, b.o.latQPS, lat.Key)
			if err := report.Bars(f, title, "µs", names, s); err != nil {
				return nil, err
			}
			out = append(out, f)
		}
	}
	if t, ok := tableOf(tables, "paths"); ok && len(t.Rows) > 0 {
		names := serverOrder([]report.Table{t})
		f := filepath.Join(dir, "paths.png")
		s := []report.Series{
			{Name: "thousand queries/s", Values: valuesOf(t, names, func(r report.Row) float64 { return r.QPS / 1000 })},
			{Name: "CPU µs/query", Values: valuesOf(t, names, func(r report.Row) float64 { return float64(r.CPUPerQuery) / 1e3 })},
		}
		if err := report.Bars(f, "shardns by path (Unbound for reference)", "thousand queries/s; µs of CPU per query", names, s); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	if t, ok := tableOf(tables, "shards"); ok {
		var xs, qps, cpu []float64
		for _, n := range shardCounts() {
			r, ok := rowOf(t, shardName(n))
			if !ok {
				continue
			}
			xs = append(xs, float64(n))
			qps = append(qps, r.QPS/1000)
			cpu = append(cpu, float64(r.CPUPerQuery)/1e3)
		}
		if len(xs) > 0 {
			for _, p := range []struct {
				file, y string
				v       []float64
			}{{"shards-qps.png", "thousand queries/s", qps}, {"shards-cpu.png", "µs of CPU per query", cpu}} {
				f := filepath.Join(dir, p.file)
				if err := report.Lines(f, "shardns, L1 off: Redis shards", "shards", p.y, xs, []report.Series{{Name: "shardns", Values: p.v}}); err != nil {
					return nil, err
				}
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// serverOrder lists the servers of the tables, first seen first.
func serverOrder(ts []report.Table) []string {
	var out []string
	for _, t := range ts {
		for _, r := range t.Rows {
			if !slices.Contains(out, r.Server) {
				out = append(out, r.Server)
			}
		}
	}
	return out
}

func seriesOf(ts []report.Table, servers []string, f func(report.Row) float64) []report.Series {
	var out []report.Series
	for _, t := range ts {
		out = append(out, report.Series{Name: t.Key, Values: valuesOf(t, servers, f)})
	}
	return out
}

func valuesOf(t report.Table, servers []string, f func(report.Row) float64) []float64 {
	out := make([]float64, len(servers))
	for i, s := range servers {
		if r, ok := rowOf(t, s); ok && r.Err == "" {
			out[i] = f(r)
		}
	}
	return out
}
