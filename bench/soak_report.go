package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shardns/shardns/bench/report"
	"github.com/shardns/shardns/internal/testutil/dnsperf"
)

const mb = float64(1 << 20)

// soakMetric is one figure followed over the soak.
type soakMetric struct {
	name    string
	unit    string  // as shown: "MB" or ""
	div     float64 // shown value = raw / div
	get     func(soakSample) float64
	verdict bool    // counts for the verdict
	floor   float64 // smallest slope per minute, in raw units, that counts as growth
	// lowest: the figure is the lowest sample of each minute. Goroutines
	// count the queries in flight at the moment of the sample; what a
	// leak raises is the count under them.
	lowest bool
}

func soakMetrics() []soakMetric {
	goroutines := func(s soakSample) float64 { return s.DnsdGoroutines }
	resGoroutines := func(s soakSample) float64 { return s.ResGoroutines }
	return []soakMetric{
		{name: "dnsd RSS", unit: "MB", div: mb, get: func(s soakSample) float64 { return s.DnsdRSS }, verdict: true},
		{name: "dnsd live heap", unit: "MB", div: mb, get: func(s soakSample) float64 { return s.DnsdLive }, verdict: true},
		{name: "dnsd heap in use (saw-tooth of GC cycles)", unit: "MB", div: mb, get: func(s soakSample) float64 { return s.DnsdHeap }},
		{name: "dnsd goroutines, lowest per minute", get: goroutines, floor: 0.5, lowest: true},
		{name: "dnsd goroutines, every sample", get: goroutines, floor: 0.5},
		{name: "dnsd open fds", get: func(s soakSample) float64 { return s.DnsdFDs }, verdict: true, floor: 0.5},
		{name: "dnsd open fds, lowest per minute", get: func(s soakSample) float64 { return s.DnsdFDs }, verdict: true, floor: 0.5, lowest: true},
		{name: "resolverd RSS", unit: "MB", div: mb, get: func(s soakSample) float64 { return s.ResRSS }, verdict: true},
		{name: "resolverd live heap", unit: "MB", div: mb, get: func(s soakSample) float64 { return s.ResLive }, verdict: true},
		{name: "resolverd goroutines, lowest per minute", get: resGoroutines, floor: 0.5, lowest: true},
		{name: "Redis used_memory (4 shards)", unit: "MB", div: mb, get: func(s soakSample) float64 { return s.RedisUsed }},
		{name: "Redis keys (4 shards)", get: func(s soakSample) float64 { return s.RedisKeys }},
		{name: "Redis bytes per key", get: bytesPerKey},
	}
}

func bytesPerKey(s soakSample) float64 {
	if s.RedisKeys == 0 {
		return 0
	}
	return s.RedisUsed / s.RedisKeys
}

// soakTrend is one metric's figures over the run.
type soakTrend struct {
	metric   soakMetric
	early    float64 // the point nearest minute 2 (or a quarter of a shorter run)
	lateMax  float64 // the largest point of the late window
	firstMax float64 // the largest point after the first minute and before the second half
	mean     float64 // mean over the second half
	slope    float64 // least squares over the second half, per minute
	slopeSE  float64 // its standard error
	slopePct float64 // slope as % of mean
	grows    bool
}

// soakAnalysis is the trends and the verdict of a soak.
type soakAnalysis struct {
	trends      []soakTrend
	earlyAt     time.Duration // the early figure is the point nearest this
	lateFrom    time.Duration // the late window starts here
	secondHalf  int           // samples in the second half
	verdict     string
	noGrowth    bool
	judged      bool
	growthNames []string
	restChecked bool
	restBefore  soakSample // the fleet at rest after the warm-up
	restAfter   soakSample // and after the load
}

// point is one figure of a metric at a time.
type point struct {
	at time.Duration
	v  float64
}

// points is m's series: every sample, or the lowest of each minute.
func (m soakMetric) points(samples []soakSample) []point {
	var out []point
	for _, s := range samples {
		p := point{s.At, m.get(s)}
		if m.lowest && len(out) > 0 && out[len(out)-1].at/time.Minute == s.At/time.Minute {
			if p.v < out[len(out)-1].v {
				out[len(out)-1] = p
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

// analyzeSoak compares the early figures with the late window (the last 5
// minutes, or the second half of a shorter run) and fits a line to the
// second half of each metric. A metric grows when its slope exceeds
// soakGrowthPct of its mean per minute (and its floor) and the late window
// rises above the highest point the first half reached after its first
// minute (the warm-up): what leaks accumulates, and sets new highs; a pool
// that closes and reopens connections moves within its range. The verdict
// is "no growth" only when no metric that counts grows and the second half
// has enough samples.
func analyzeSoak(samples []soakSample, duration time.Duration) soakAnalysis {
	var a soakAnalysis
	if len(samples) == 0 {
		a.verdict = "no samples"
		return a
	}
	a.earlyAt = min(2*time.Minute, duration/4)
	a.lateFrom = max(duration-5*time.Minute, duration/2)
	for _, s := range samples {
		if s.At >= duration/2 {
			a.secondHalf++
		}
	}
	a.judged = a.secondHalf >= soakMinSecond
	for _, m := range soakMetrics() {
		if m.div == 0 {
			m.div = 1
		}
		pts := m.points(samples)
		t := soakTrend{metric: m}
		early := pts[0]
		var xs, ys []float64
		for _, p := range pts {
			if absDur(p.at-a.earlyAt) < absDur(early.at-a.earlyAt) {
				early = p
			}
			if p.at >= a.lateFrom {
				t.lateMax = max(t.lateMax, p.v)
			}
			if p.at >= time.Minute && p.at < duration/2 {
				t.firstMax = max(t.firstMax, p.v)
			}
			if p.at >= duration/2 {
				xs, ys = append(xs, p.at.Minutes()), append(ys, p.v)
			}
		}
		t.early = early.v
		t.mean = mean(ys)
		t.slope, t.slopeSE = slope(xs, ys)
		if t.mean != 0 {
			t.slopePct = 100 * t.slope / t.mean
		}
		t.grows = len(xs) >= 2 && t.slope > max(soakGrowthPct/100*t.mean, m.floor) && t.lateMax > t.firstMax
		if t.grows && m.verdict {
			a.growthNames = append(a.growthNames, m.name)
		}
		a.trends = append(a.trends, t)
	}
	switch {
	case !a.judged:
		a.verdict = fmt.Sprintf("too short to judge (%d samples in the second half, %d needed)", a.secondHalf, soakMinSecond)
	case len(a.growthNames) == 0:
		a.noGrowth = true
		a.verdict = "no growth"
	default:
		a.verdict = "growth: " + strings.Join(a.growthNames, ", ")
	}
	return a
}

// soakRestSlack is how many goroutines more at rest after the soak than
// before it still count as the same: timers and connections of the pools.
const soakRestSlack = 3

// rest judges goroutines by the fleet at rest before and after the load:
// under load they count the queries in flight, at rest only what the
// process holds. More after than before (beyond soakRestSlack) is growth.
func (a *soakAnalysis) rest(before, after soakSample) {
	a.restChecked = true
	a.restBefore, a.restAfter = before, after
	var grew []string
	if after.DnsdGoroutines > before.DnsdGoroutines+soakRestSlack {
		grew = append(grew, "dnsd goroutines at rest")
	}
	if after.ResGoroutines > before.ResGoroutines+soakRestSlack {
		grew = append(grew, "resolverd goroutines at rest")
	}
	if len(grew) == 0 {
		return
	}
	a.growthNames = append(a.growthNames, grew...)
	if a.judged {
		a.noGrowth = false
		a.verdict = "growth: " + strings.Join(a.growthNames, ", ")
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func mean(ys []float64) float64 {
	if len(ys) == 0 {
		return 0
	}
	s := 0.0
	for _, y := range ys {
		s += y
	}
	return s / float64(len(ys))
}

// slope is the least-squares slope of ys over xs and its standard
// error; 0, 0 with fewer than two distinct xs (the error needs three
// points).
func slope(xs, ys []float64) (b, se float64) {
	mx, my := mean(xs), mean(ys)
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0, 0
	}
	b = num / den
	if n := len(xs); n > 2 {
		var rss float64
		for i := range xs {
			r := ys[i] - (my + b*(xs[i]-mx))
			rss += r * r
		}
		se = math.Sqrt(rss / float64(n-2) / den)
	}
	return b, se
}

// soakReport is what the soak section shows.
type soakReport struct {
	samples    []soakSample
	analysis   soakAnalysis
	st         dnsperf.Stats
	sources    string
	plots      []string // relative to RESULTS.md
	alive      error
	sampleErrs []string
	lines      int
	before     soakSample // at rest before the load
	after      soakSample // at rest after it
	dump       string     // dnsd's log with its goroutines, when taken
}

func (b *bench) soakMarkdown(r soakReport) string {
	var sb strings.Builder
	o, a, st := b.o, r.analysis, r.st
	fmt.Fprintf(&sb, "## Soak: memory over %s at %d queries/s\n\n", secsLabel(o.soakDuration), o.soakQPS)
	fmt.Fprintf(&sb, "The %s arrangement (dnsd -l1 %d, Redis×4 with maxmemory %s each and %s, resolverd -upstream nsd), "+
		"warmed with every distinct question of the Zipf trace once, then driven by `dnsperf -l %s -Q %d -c %d -q %d -t %s -T 1` "+
		"over a trace of %d lines: the Zipf trace's questions in turn, and every %dth question an A question for a name never asked before "+
		"(NXDOMAIN, negative TTL 300 s, kept in Redis for the stale window too), so L1 evicts throughout and Redis grows until maxmemory evicts. "+
		"Every %s bench reads dnsd's and resolverd's VmRSS (/proc/<pid>/status), their Go heap in use, live heap (go_gc_heap_live_bytes: "+
		"the heap the last collection kept) and goroutines (Prometheus metrics), dnsd's open descriptors (/proc/<pid>/fd), and each shard's used_memory, "+
		"evicted_keys (INFO) and DBSIZE.\n\n",
		nameFleet, soakL1, soakRedisMemory, "allkeys-lfu", secs(o.soakDuration), o.soakQPS, o.clients, o.outstanding, secs(o.timeout),
		r.lines, soakFreshEvery, secsLabel(soakInterval))
	lost := 0.0
	if st.Sent > 0 {
		lost = float64(st.Lost) / float64(st.Sent)
	}
	fmt.Fprintf(&sb, "**Load**: dnsperf sent %d queries and %d were answered in %.0f s: **%s answered queries/s, %.2f× the target rate**, "+
		"%d lost (%.3f%%), mean latency %s µs", st.Sent, st.Completed, st.RunTime.Seconds(), report.QPSString(st.QPS),
		st.QPS/float64(o.soakQPS), st.Lost, 100*lost, report.Micros(st.AvgLatency))
	if r.sources != "" {
		fmt.Fprintf(&sb, "; answers by source (dnsd's counters over the soak): %s", r.sources)
	}
	if odd := oddRcodes(st.Rcodes, st.Completed); odd != "" {
		fmt.Fprintf(&sb, "; response codes besides NOERROR/NXDOMAIN: %s", odd)
	}
	sb.WriteString(".\n\n")
	if r.alive != nil {
		fmt.Fprintf(&sb, "**A process of the fleet exited during the soak**: %s\n\n", oneLine(r.alive.Error()))
	}
	if len(r.sampleErrs) > 0 {
		fmt.Fprintf(&sb, "%d samples failed; the first: %s\n\n", len(r.sampleErrs), oneLine(r.sampleErrs[0]))
	}

	sb.WriteString("| minute | dnsd RSS MB | dnsd heap in use MB | dnsd live heap MB | dnsd goroutines | dnsd fds | resolverd RSS MB | resolverd live heap MB | resolverd goroutines | Redis used MB | Redis keys | bytes/key | evicted keys |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range everyMinute(r.samples) {
		fmt.Fprintf(&sb, "| %.1f | %.1f | %.1f | %.1f | %.0f | %.0f | %.1f | %.1f | %.0f | %.1f | %.0f | %.0f | %.0f |\n",
			s.At.Minutes(), s.DnsdRSS/mb, s.DnsdHeap/mb, s.DnsdLive/mb, s.DnsdGoroutines, s.DnsdFDs, s.ResRSS/mb, s.ResLive/mb,
			s.ResGoroutines, s.RedisUsed/mb, s.RedisKeys, bytesPerKey(s), s.RedisEvicted)
	}
	sb.WriteString("\n")

	fmt.Fprintf(&sb, "Early figure: the sample at minute %.1f; late window: from minute %.1f to the end; "+
		"slope: least squares over the second half (%d samples from minute %.1f), per minute. "+
		"A metric grows when its slope exceeds %.0f%% of its second-half mean per minute (goroutines and descriptors: and at least 0.5 per minute) "+
		"and its late window rises above the highest point of the first half after minute 1 (first-half max): what leaks accumulates and sets new highs, "+
		"while Redis connections that time out are closed and reopened within the pool's range. "+
		"The live heap, not the heap in use, is the heap that counts: the heap in use rises and falls with every GC cycle, so a sample every 10 s catches it anywhere between the live heap and twice it. "+
		"Under load goroutines also count the queries in flight at the moment of the sample (the lowest of each minute is shown too); "+
		"they count for the verdict at rest, before and after the load (below).\n\n",
		a.earlyAt.Minutes(), a.lateFrom.Minutes(), a.secondHalf, (o.soakDuration / 2).Minutes(), soakGrowthPct)
	sb.WriteString("| metric | early | first-half max | late max | late max ÷ early | second-half mean | slope per minute (± 2 SE) | slope, % of mean per minute | grows | in verdict |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, t := range a.trends {
		m := t.metric
		ratio := "—"
		if t.early > 0 {
			ratio = fmt.Sprintf("%.2f×", t.lateMax/t.early)
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s ± %s | %+.2f%% | %s | %s |\n", withUnit(m),
			num(t.early/m.div), num(t.firstMax/m.div), num(t.lateMax/m.div), ratio, num(t.mean/m.div), signed(t.slope/m.div), strings.TrimPrefix(signed(2*t.slopeSE/m.div), "+"), t.slopePct,
			yesNo(t.grows), yesNo(m.verdict))
	}
	sb.WriteString("\n")
	if n := len(r.samples); n > 0 {
		first, last := r.samples[0], r.samples[n-1]
		fmt.Fprintf(&sb, "Redis: %.0f keys and %.1f MB at the start, %.0f keys and %.1f MB at the end (%.0f and %.0f bytes per key), "+
			"%.0f keys evicted and %.0f expired over the run; its memory follows its keys up to maxmemory, not the run's length.\n\n",
			first.RedisKeys, first.RedisUsed/mb, last.RedisKeys, last.RedisUsed/mb, bytesPerKey(first), bytesPerKey(last),
			last.RedisEvicted-first.RedisEvicted, last.RedisExpired-first.RedisExpired)
	}
	fmt.Fprintf(&sb, "At rest (%s without load) before and after the soak: dnsd goroutines %.0f → %.0f, resolverd goroutines %.0f → %.0f, "+
		"dnsd open fds %.0f → %.0f, dnsd live heap %.1f → %.1f MB, dnsd RSS %.1f → %.1f MB. "+
		"Goroutines count for the verdict here, where no query is in flight: more than %d more after the soak is growth.\n\n",
		secsLabel(soakRest), r.before.DnsdGoroutines, r.after.DnsdGoroutines, r.before.ResGoroutines, r.after.ResGoroutines,
		r.before.DnsdFDs, r.after.DnsdFDs, r.before.DnsdLive/mb, r.after.DnsdLive/mb, r.before.DnsdRSS/mb, r.after.DnsdRSS/mb, soakRestSlack)
	fmt.Fprintf(&sb, "**Verdict: %s** (dnsd and resolverd: RSS, live heap, descriptors over the second half; goroutines at rest).\n\n", a.verdict)
	if r.dump != "" {
		fmt.Fprintf(&sb, "dnsd's goroutines at the end (SIGQUIT) are in `%s`.\n\n", r.dump)
	}
	for _, p := range r.plots {
		fmt.Fprintf(&sb, "![%s](%s)\n\n", p, p)
	}
	if len(r.plots) > 0 {
		csv := filepath.ToSlash(filepath.Join(filepath.Dir(r.plots[0]), "soak-samples.csv"))
		fmt.Fprintf(&sb, "Every sample: [%s](%s).\n", csv, csv)
	}
	return strings.TrimSpace(sb.String())
}

// everyMinute picks the first sample of every minute, and the last sample.
func everyMinute(samples []soakSample) []soakSample {
	var out []soakSample
	next := time.Duration(0)
	for _, s := range samples {
		if s.At >= next {
			out = append(out, s)
			next = (s.At/time.Minute + 1) * time.Minute
		}
	}
	if n := len(samples); n > 0 && (len(out) == 0 || out[len(out)-1].At != samples[n-1].At) {
		out = append(out, samples[n-1])
	}
	return out
}

// soakPlots draws dnsd's and resolverd's memory and their goroutines over
// the soak.
func (b *bench) soakPlots(samples []soakSample) ([]string, error) {
	if len(samples) < 2 {
		return nil, nil
	}
	step := max(3, len(samples)/20) // at most about 20 points: the x axis labels every point
	var xs []float64
	var rssD, heapD, liveD, rssR, gD, gR, fds []float64
	for i := 0; i < len(samples); i += step {
		s := samples[i]
		xs = append(xs, math.Round(s.At.Minutes()*10)/10)
		rssD, heapD, liveD, rssR = append(rssD, s.DnsdRSS/mb), append(heapD, s.DnsdHeap/mb), append(liveD, s.DnsdLive/mb), append(rssR, s.ResRSS/mb)
		gD, gR, fds = append(gD, s.DnsdGoroutines), append(gR, s.ResGoroutines), append(fds, s.DnsdFDs)
	}
	dir := b.o.plots
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	title := fmt.Sprintf("Soak at %d queries/s", b.o.soakQPS)
	plots := []struct {
		file, title, y string
		s              []report.Series
	}{
		{"soak-memory.png", title + ": memory", "MB", []report.Series{
			{Name: "dnsd RSS", Values: rssD}, {Name: "dnsd heap in use", Values: heapD}, {Name: "dnsd live heap", Values: liveD}, {Name: "resolverd RSS", Values: rssR}}},
		{"soak-goroutines.png", title + ": goroutines and descriptors", "count", []report.Series{
			{Name: "dnsd goroutines", Values: gD}, {Name: "resolverd goroutines", Values: gR}, {Name: "dnsd open fds", Values: fds}}},
	}
	var out []string
	csv := filepath.Join(dir, "soak-samples.csv")
	if err := os.WriteFile(csv, []byte(soakCSV(samples)), 0o644); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	for _, p := range plots {
		if err := report.Lines(filepath.Join(dir, p.file), p.title, "minutes", p.y, xs, p.s); err != nil {
			return nil, err
		}
		out = append(out, filepath.ToSlash(filepath.Join(filepath.Base(filepath.Clean(dir)), p.file)))
	}
	return out, nil
}

// soakCSV is every sample, one row each, raw units (bytes, counts).
func soakCSV(samples []soakSample) string {
	var b strings.Builder
	b.WriteString("seconds,dnsd_rss,dnsd_heap_inuse,dnsd_live_heap,dnsd_goroutines,dnsd_fds,resolverd_rss,resolverd_heap_inuse,resolverd_live_heap,resolverd_goroutines,redis_used_memory,redis_keys,redis_evicted_keys,redis_expired_keys\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "%.1f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f\n", s.At.Seconds(), s.DnsdRSS, s.DnsdHeap, s.DnsdLive,
			s.DnsdGoroutines, s.DnsdFDs, s.ResRSS, s.ResHeap, s.ResLive, s.ResGoroutines, s.RedisUsed, s.RedisKeys, s.RedisEvicted, s.RedisExpired)
	}
	return b.String()
}

func withUnit(m soakMetric) string {
	if m.unit == "" {
		return m.name
	}
	return m.name + ", " + m.unit
}

func num(v float64) string {
	if math.Abs(v) >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func signed(v float64) string {
	if math.Abs(v) >= 100 {
		return fmt.Sprintf("%+.0f", v)
	}
	return fmt.Sprintf("%+.3f", v)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func secsLabel(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return secs(d) + " s"
}
