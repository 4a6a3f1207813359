package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shardns/shardns/bench/peers"
	"github.com/shardns/shardns/bench/report"
	"github.com/shardns/shardns/internal/testutil/dnsperf"
)

// live is one server of a workload while the workload runs.
type live struct {
	tg     target
	srv    *peers.Server
	row    report.Row
	lat    []time.Duration // per answered query of every latency round
	qps    []float64
	cpu    []time.Duration // per answered query, one per round
	sent   int64
	lost   int64
	avg    []time.Duration
	src    map[string]float64 // answers by source over every round
	rcodes map[string]int64
	done   int64 // answered queries over all rounds
}

func (l *live) fail(err error) {
	if l.row.Err == "" {
		l.row.Err = err.Error()
	}
}

func (l *live) ok() bool { return l.row.Err == "" }

// runWorkload starts every server of w at once, warms them (warm
// workloads), then runs the full-load rounds, each round driving every
// server in turn, so that a burst of other work on the machine falls on
// all of them alike; then the latency rounds, each also driving every
// server in turn (a cold workload takes them first, on caches that have
// seen none of their questions). A server that fails gets a row saying
// why; only an interrupt stops the workload.
func (b *bench) runWorkload(ctx context.Context, w workload) (report.Table, error) {
	t := report.Table{Key: w.key, Title: w.title, About: w.about, Baseline: baseline}
	var ls []*live
	defer func() { // stop them all at once: each may take seconds to exit cleanly
		var wg sync.WaitGroup
		for _, l := range ls {
			if l.srv != nil && !l.tg.shared {
				wg.Go(l.srv.Stop)
			}
		}
		wg.Wait()
	}()
	for _, tg := range w.targets() {
		l := &live{tg: tg, row: report.Row{Server: tg.name}, rcodes: map[string]int64{}}
		ls = append(ls, l)
		srv, err := tg.start(ctx)
		if err != nil {
			l.fail(err)
			continue
		}
		l.srv = srv
	}
	if err := ctx.Err(); err != nil {
		return t, err
	}
	files := b.data.files[w.files]
	if w.cold {
		if err := b.latRounds(ctx, w, ls, files.lats, true); err != nil {
			return t, err
		}
	}
	for _, l := range ls { // warm the caches
		if l.ok() && l.tg.caches && !w.cold {
			b.log.Info("warm-up", "workload", w.key, "server", l.tg.name)
			r := b.perfRun(l.srv, files.warm)
			r.Duration, r.Once = b.o.warmLimit, true
			if _, err := b.dnsperf(ctx, r); err != nil {
				l.fail(fmt.Errorf("warm-up: %w", err))
			}
		}
		if err := ctx.Err(); err != nil {
			return t, err
		}
	}
	for round := range b.o.rounds {
		file := files.trace
		if w.cold {
			file = files.rounds[round]
		}
		for _, l := range ls {
			if !l.ok() {
				continue
			}
			b.log.Info("full-load run", "workload", w.key, "round", round+1, "server", l.tg.name)
			if err := b.fullRound(ctx, l, file, w.cold); err != nil {
				if ctx.Err() != nil {
					return t, ctx.Err()
				}
				l.fail(err)
			}
		}
	}
	if !w.cold {
		traces := make([]string, b.o.rounds)
		for i := range traces {
			traces[i] = files.trace
		}
		if err := b.latRounds(ctx, w, ls, traces, false); err != nil {
			return t, err
		}
	}
	for _, l := range ls {
		if l.ok() {
			if err := l.srv.Alive(); err != nil {
				l.fail(err)
			}
		}
		row := b.finish(l)
		if row.Err != "" {
			b.log.Warn("run failed", "workload", w.key, "server", l.tg.name, "err", row.Err)
		} else {
			b.log.Info("result", "workload", w.key, "server", l.tg.name, "qps", int(row.QPS), "p50", row.P50, "p99", row.P99,
				"cpu_per_query", row.CPUPerQuery, "lost", fmt.Sprintf("%.2f%%", 100*row.Lost), "sources", row.Sources)
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// fullRound drives l at full load once, reading its CPU time and answer
// sources around the run.
func (b *bench) fullRound(ctx context.Context, l *live, file string, once bool) error {
	r := b.perfRun(l.srv, file)
	r.Duration, r.MaxQPS, r.Once = b.o.duration, b.o.maxQPS, once
	src0, err := l.srv.Sources(ctx)
	if err != nil {
		return err
	}
	cpu0, err := l.srv.CPU()
	if err != nil {
		return err
	}
	st, err := b.dnsperf(ctx, r)
	if err != nil {
		return err
	}
	cpu1, err := l.srv.CPU()
	if err != nil {
		return err
	}
	src1, err := l.srv.Sources(ctx)
	if err != nil {
		return err
	}
	if st.Completed == 0 {
		return fmt.Errorf("no query answered of %d sent", st.Sent)
	}
	l.src = addCounts(l.src, src0, src1)
	l.qps = append(l.qps, st.QPS)
	l.cpu = append(l.cpu, (cpu1-cpu0)/time.Duration(st.Completed))
	l.avg = append(l.avg, st.AvgLatency)
	l.sent += st.Sent
	l.lost += st.Lost
	l.done += st.Completed
	for rc, n := range st.Rcodes {
		l.rcodes[rc] += n
	}
	return nil
}

// addCounts adds the growth of counters from before to after onto acc.
func addCounts(acc, before, after map[string]float64) map[string]float64 {
	if acc == nil {
		acc = map[string]float64{}
	}
	for k, v := range after {
		acc[k] += v - before[k]
	}
	return acc
}

// finish turns l's rounds into its row: medians of the rounds' qps, CPU
// per query and mean latency, the rounds' qps range, percentiles of the
// latency run.
func (b *bench) finish(l *live) report.Row {
	row := l.row
	if row.Err != "" || len(l.qps) == 0 {
		if row.Err == "" {
			row.Err = "no full-load round completed"
		}
		return row
	}
	row.QPS = median(l.qps)
	row.QPSMin, row.QPSMax = slices.Min(l.qps), slices.Max(l.qps)
	row.Rounds = len(l.qps)
	row.CPUPerQuery = median(l.cpu)
	row.AvgLoad = median(l.avg)
	row.Lost = float64(l.lost) / float64(max(l.sent, 1))
	row.P50 = dnsperf.Percentile(l.lat, 50)
	row.P99 = dnsperf.Percentile(l.lat, 99)
	row.Sources = joinNotes(sourceShares(nil, l.src), oddRcodes(l.rcodes, l.done))
	return row
}

// median of xs (the mean of the middle two for an even count).
func median[T float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// latRounds runs one latency round per file, each driving every server in
// turn, and keeps every answered query's latency: a burst of other work on
// the machine then falls on one round of each server, not on all of one
// server's. once sends each question of the file once (cold workloads).
func (b *bench) latRounds(ctx context.Context, w workload, ls []*live, files []string, once bool) error {
	for round, file := range files {
		for _, l := range ls {
			if !l.ok() {
				continue
			}
			b.log.Info("latency run", "workload", w.key, "round", round+1, "server", l.tg.name)
			st, err := b.dnsperf(ctx, b.latRun(l.srv, file, once))
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				l.fail(err)
				continue
			}
			l.lat = append(l.lat, st.Latencies...)
		}
	}
	return ctx.Err()
}

// latRun is a latency run against srv: the fixed rate, every query's
// latency reported.
func (b *bench) latRun(srv *peers.Server, file string, once bool) dnsperf.Run {
	r := b.perfRun(srv, file)
	r.Duration, r.MaxQPS, r.Verbose, r.Once = b.o.latDuration, b.o.latQPS, true, once
	return r
}

// perfRun is a dnsperf run against srv with the run's common settings.
func (b *bench) perfRun(srv *peers.Server, file string) dnsperf.Run {
	return dnsperf.Run{
		Bin: b.tools.dnsperf, Prefix: b.loadPrefix, Server: srv.Addr, File: file,
		Clients: b.o.clients, Outstanding: b.o.outstanding, Timeout: b.o.timeout,
	}
}

func (b *bench) dnsperf(ctx context.Context, r dnsperf.Run) (dnsperf.Stats, error) {
	st, out, err := dnsperf.Exec(ctx, r)
	if err != nil {
		b.log.Debug("dnsperf output", "out", out)
		if len(out) > 600 {
			out = out[len(out)-600:]
		}
		return st, fmt.Errorf("%w: %s", err, strings.TrimSpace(out))
	}
	return st, nil
}

// sourceShares formats where shardns's answers came from between two reads
// of its counters, largest share first: "l1 97.1%, resolver 2.9%".
func sourceShares(before, after map[string]float64) string {
	total := 0.0
	type share struct {
		src string
		n   float64
	}
	var ss []share
	for src, n := range after {
		d := n - before[src]
		if d > 0 {
			ss = append(ss, share{src, d})
			total += d
		}
	}
	if total == 0 {
		return ""
	}
	slices.SortFunc(ss, func(a, b share) int {
		if a.n != b.n {
			if a.n > b.n {
				return -1
			}
			return 1
		}
		return strings.Compare(a.src, b.src)
	})
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("%s %.1f%%", s.src, 100*s.n/total))
	}
	return strings.Join(parts, ", ")
}

// oddRcodes names the response codes other than NOERROR and NXDOMAIN that
// answered more than 0.1% of queries: a server failing rather than
// answering.
func oddRcodes(rcodes map[string]int64, completed int64) string {
	var parts []string
	for rc, n := range rcodes {
		if rc == "NOERROR" || rc == "NXDOMAIN" || completed == 0 {
			continue
		}
		if share := float64(n) / float64(completed); share > 0.001 {
			parts = append(parts, fmt.Sprintf("%s %.1f%%", rc, 100*share))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
