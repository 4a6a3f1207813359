package main

import (
	"bufio"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tdnsd\nVmPeak:\t  900000 kB\nVmRSS:\t   23456 kB\nThreads:\t7\n"
	got, err := parseVmRSS(status)
	if err != nil || got != 23456*1024 {
		t.Errorf("parseVmRSS = %v, %v; want %v", got, err, 23456*1024)
	}
	for _, bad := range []string{"Name:\tdnsd\n", "VmRSS:\t12 MB\n", "VmRSS:\tx kB\n", ""} {
		if _, err := parseVmRSS(bad); err == nil {
			t.Errorf("parseVmRSS(%q): no error", bad)
		}
	}
}

func TestParseRedisInfo(t *testing.T) {
	info := "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory_policy:allkeys-lfu\r\n\r\n# Stats\r\nevicted_keys:12\r\n"
	m := parseRedisInfo(info)
	if m["used_memory"] != 1<<20 || m["evicted_keys"] != 12 {
		t.Errorf("parseRedisInfo = %v", m)
	}
	if _, ok := m["used_memory_human"]; ok {
		t.Error("a non-numeric field was read")
	}
}

func TestSlope(t *testing.T) {
	xs := []float64{5, 6, 7, 8, 9, 10}
	ys := make([]float64, len(xs))
	for i, x := range xs {
		ys[i] = 3*x + 100
	}
	if got, se := slope(xs, ys); math.Abs(got-3) > 1e-9 || se > 1e-9 {
		t.Errorf("slope = %v ± %v, want 3 ± 0", got, se)
	}
	ys[0], ys[5] = ys[0]+1, ys[5]-1
	if got, se := slope(xs, ys); got >= 3 || se <= 0 {
		t.Errorf("noisy slope = %v ± %v, want below 3 with an error", got, se)
	}
	if got, _ := slope([]float64{1, 1}, []float64{1, 5}); got != 0 {
		t.Errorf("slope over one x = %v, want 0", got)
	}
	if got, _ := slope(nil, nil); got != 0 {
		t.Errorf("slope of nothing = %v", got)
	}
}

// soakRun makes a 10-minute run sampled every 10 s, with f giving a
// sample's dnsd live heap at minute m and every other figure flat with
// noise; the heap in use saw-tooths between the live heap and twice it,
// and goroutines jump with the queries in flight.
func soakRun(f func(m float64) float64) []soakSample {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(v float64) float64 { return v * (1 + 0.02*(rng.Float64()-0.5)) }
	inFlight := func() float64 { // mostly a few, at times a burst
		if rng.IntN(5) == 0 {
			return float64(rng.IntN(100))
		}
		return float64(rng.IntN(4))
	}
	var out []soakSample
	for at := time.Duration(0); at < 10*time.Minute; at += soakInterval {
		m := at.Minutes()
		out = append(out, soakSample{
			At: at, DnsdRSS: noise(40 * mb), DnsdLive: f(m), DnsdGoroutines: 20 + inFlight(),
			DnsdFDs: 30, ResRSS: noise(30 * mb), ResLive: noise(5 * mb), ResGoroutines: 15,
			RedisUsed: 4*mb + m*mb, RedisKeys: 1000 + m*4000, Shards: 4,
		})
		out[len(out)-1].DnsdHeap = out[len(out)-1].DnsdLive * (1 + rng.Float64())
	}
	return out
}

func TestAnalyzeSoak(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	flat := analyzeSoak(soakRun(func(float64) float64 { return 20 * mb * (1 + 0.1*(rng.Float64()-0.5)) }), 10*time.Minute)
	if !flat.noGrowth || flat.verdict != "no growth" {
		t.Errorf("flat run: verdict %q, growth in %v", flat.verdict, flat.growthNames)
	}
	if flat.earlyAt != 2*time.Minute || flat.lateFrom != 5*time.Minute || flat.secondHalf != 30 {
		t.Errorf("flat run: early %v, late from %v, second half %d", flat.earlyAt, flat.lateFrom, flat.secondHalf)
	}
	// Redis grows with its keys, which does not count.
	for _, tr := range flat.trends {
		if strings.HasPrefix(tr.metric.name, "Redis used") && (!tr.grows || tr.metric.verdict) {
			t.Errorf("Redis used_memory: grows %v, in verdict %v", tr.grows, tr.metric.verdict)
		}
	}
	// 2% of 20 MB per minute: a leak.
	leak := analyzeSoak(soakRun(func(m float64) float64 { return 20*mb + m*0.4*mb }), 10*time.Minute)
	if leak.noGrowth || leak.verdict != "growth: dnsd live heap" {
		t.Errorf("leaking run: verdict %q", leak.verdict)
	}
	for _, tr := range leak.trends {
		if tr.metric.name == "dnsd live heap" {
			if math.Abs(tr.slope-0.4*mb) > 1 || tr.lateMax <= tr.early {
				t.Errorf("leaking run: slope %v MB/min, early %v, late max %v", tr.slope/mb, tr.early, tr.lateMax)
			}
		}
	}
	// Goroutines count for the verdict at rest, before and after the load.
	g := analyzeSoak(soakRun(func(float64) float64 { return 20 * mb }), 10*time.Minute)
	g.rest(soakSample{DnsdGoroutines: 30, ResGoroutines: 70}, soakSample{DnsdGoroutines: 33, ResGoroutines: 70})
	if !g.noGrowth {
		t.Errorf("goroutines back at rest: verdict %q", g.verdict)
	}
	g.rest(soakSample{DnsdGoroutines: 30, ResGoroutines: 70}, soakSample{DnsdGoroutines: 50, ResGoroutines: 70})
	if g.noGrowth || g.verdict != "growth: dnsd goroutines at rest" {
		t.Errorf("goroutines left at rest: verdict %q", g.verdict)
	}
	// Descriptors that dip when pooled connections close and come back
	// within their range: a positive slope over the second half, no new high.
	d := soakRun(func(float64) float64 { return 20 * mb })
	for i := range d {
		d[i].DnsdFDs = 58
		if m := d[i].At.Minutes(); m >= 5 && m < 7 {
			d[i].DnsdFDs = 50
		}
	}
	if a := analyzeSoak(d, 10*time.Minute); !a.noGrowth {
		t.Errorf("descriptors back within their range: verdict %q", a.verdict)
	}
	if csv := soakCSV(d[:2]); strings.Count(csv, "\n") != 3 || !strings.HasPrefix(strings.Split(csv, "\n")[2], "10.0,") {
		t.Errorf("soakCSV:\n%s", csv)
	}
	short := analyzeSoak(soakRun(func(float64) float64 { return 20 * mb })[:6], time.Minute)
	if short.noGrowth || short.judged || !strings.HasPrefix(short.verdict, "too short") {
		t.Errorf("one-minute run: verdict %q", short.verdict)
	}
	if none := analyzeSoak(nil, time.Minute); none.noGrowth {
		t.Error("no samples: no growth")
	}
}

func TestLowestPerMinute(t *testing.T) {
	m := soakMetric{get: func(s soakSample) float64 { return s.DnsdGoroutines }, lowest: true}
	var ss []soakSample
	for i, g := range []float64{50, 30, 40, 60, 20, 70, 90, 35} { // 20 s apart: three a minute
		ss = append(ss, soakSample{At: time.Duration(i) * 20 * time.Second, DnsdGoroutines: g})
	}
	got := m.points(ss)
	want := []point{{20 * time.Second, 30}, {80 * time.Second, 20}, {140 * time.Second, 35}}
	if len(got) != len(want) {
		t.Fatalf("points = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("points = %v, want %v", got, want)
		}
	}
}

func TestEveryMinute(t *testing.T) {
	s := soakRun(func(float64) float64 { return mb })
	got := everyMinute(s)
	if len(got) != 11 || got[0].At != 0 || got[1].At != time.Minute || got[10].At != s[len(s)-1].At {
		var ats []time.Duration
		for _, g := range got {
			ats = append(ats, g.At)
		}
		t.Errorf("everyMinute: %v", ats)
	}
}

func TestSoakTrace(t *testing.T) {
	var b strings.Builder
	zipf := []string{"a.bench.example. A", "b.bench.example. AAAA", "a.bench.example. A"}
	if err := soakTrace(&b, zipf, "bench.example.", 1000); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var lines, fresh int
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		l := sc.Text()
		lines++
		if strings.HasPrefix(l, "soak") {
			fresh++
			if seen[l] || !strings.HasSuffix(l, ".bench.example. A") {
				t.Errorf("fresh line %q repeated or malformed", l)
			}
		}
		seen[l] = true
	}
	if lines != 1000 || fresh != 1000/soakFreshEvery {
		t.Errorf("%d lines, %d fresh", lines, fresh)
	}
}

func TestParseFlagsSoak(t *testing.T) {
	o, err := parseFlags([]string{"-quick"})
	if err != nil || o.soakDuration != 10*time.Minute || o.soakQPS != 10_000 || !strings.Contains(o.workloads, "soak") {
		t.Errorf("soak defaults: %v %v %q, %v", o.soakDuration, o.soakQPS, o.workloads, err)
	}
	for _, bad := range [][]string{{"-soak-duration", "2h"}, {"-soak-duration", "1s"}, {"-soak-qps", "0"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
