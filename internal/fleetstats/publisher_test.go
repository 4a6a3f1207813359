package fleetstats

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/testutil/procs"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

func TestTwoPublishersOnRing(t *testing.T) {
	srv := redistest.StartN(t, 4)
	ring := newRing(t, redistest.Addrs(srv))
	ctx := t.Context()
	clk := newFakeClock()
	t0 := clk.Now()

	ma, mb := newChainMetrics(), newChainMetrics()
	a := NewPublisher(PublisherConfig{Redis: ring, ID: "fe-a", Kind: "dnsd", Gatherer: ma.reg, Now: clk.Now})
	b := NewPublisher(PublisherConfig{Redis: ring, ID: "fe-b", Kind: "cacheapi", Gatherer: mb.reg, Now: clk.Now})
	ma.add(10, 5, 3, 2, 2) // 22 queries
	mb.add(1, 2, 3, 0, 0)  // 6 queries
	clk.Advance(2 * time.Second)
	for _, p := range []*Publisher{a, b} {
		if err := p.Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}

	fs := readFleet(t, ring, clk.Now().Add(500*time.Millisecond))
	if len(fs) != 2 || fs[0].ID != "fe-a" || fs[1].ID != "fe-b" {
		t.Fatalf("ReadFleet = %+v, want fe-a and fe-b in that order", fs)
	}
	fa := fs[0]
	want := Frontend{
		ID: "fe-a", Kind: "dnsd", StartedAt: t0, UpdatedAt: t0.Add(2 * time.Second),
		AgeMs: 500, IntervalMs: 5000,
		Counts: Counts{Queries: 22, L1Hits: 10, RedisHits: 5, Misses: 3, Stale: 2, Errors: 2},
		QPS:    11,
	}
	if d := diffFrontend(fa, want); d != "" {
		t.Errorf("fe-a: %s", d)
	}
	if fa.HitRatio == nil || math.Abs(*fa.HitRatio-15.0/22) > 1e-9 {
		t.Errorf("fe-a hit ratio %v, want 15/22", fa.HitRatio)
	}
	if fb := fs[1]; fb.Kind != "cacheapi" || fb.Queries != 6 || fb.Misses != 3 || fb.QPS != 3 {
		t.Errorf("fe-b = %+v, want cacheapi, 6 queries, 3 misses, 3 qps", fb)
	}

	// The next publish: counters go on, QPS covers only the new interval.
	ma.add(8, 0, 2, 0, 0)
	clk.Advance(5 * time.Second)
	if err := a.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	fa = *byID(readFleet(t, ring, clk.Now()), "fe-a")
	if fa.Queries != 32 || fa.L1Hits != 18 || fa.QPS != 2 || fa.AgeMs != 0 {
		t.Errorf("fe-a after a second publish: %+v, want 32 queries, 18 l1 hits, 2 qps", fa)
	}

	tot := Sum(readFleet(t, ring, clk.Now()))
	if tot.Frontends != 2 || tot.Queries != 38 || tot.L1Hits != 19 || tot.RedisHits != 7 ||
		tot.Misses != 8 || tot.Stale != 2 || tot.Errors != 2 || tot.QPS != 5 {
		t.Errorf("Sum = %+v", tot)
	}
	if tot.HitRatio == nil || math.Abs(*tot.HitRatio-26.0/38) > 1e-9 {
		t.Errorf("fleet hit ratio %v, want 26/38", tot.HitRatio)
	}

	// The {stats} hash tag keeps every stats key on one shard.
	holders := 0
	for _, s := range srv {
		n, err := s.Client().Exists(ctx, FrontendsKey, FrontendKey("fe-a"), FrontendKey("fe-b")).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch n {
		case 0:
		case 3:
			holders++
		default:
			t.Errorf("shard %s holds %d of the 3 stats keys", s.Addr, n)
		}
	}
	if holders != 1 {
		t.Errorf("%d shards hold the stats keys, want 1", holders)
	}
}

func diffFrontend(got, want Frontend) string {
	var d []string
	if got.ID != want.ID || got.Kind != want.Kind {
		d = append(d, "id/kind "+got.ID+"/"+got.Kind)
	}
	if !got.StartedAt.Equal(want.StartedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		d = append(d, "started "+got.StartedAt.String()+" updated "+got.UpdatedAt.String())
	}
	g := []float64{float64(got.AgeMs), float64(got.IntervalMs), float64(got.Queries), float64(got.L1Hits),
		float64(got.RedisHits), float64(got.Misses), float64(got.Stale), float64(got.Errors), got.QPS}
	w := []float64{float64(want.AgeMs), float64(want.IntervalMs), float64(want.Queries), float64(want.L1Hits),
		float64(want.RedisHits), float64(want.Misses), float64(want.Stale), float64(want.Errors), want.QPS}
	names := []string{"age_ms", "interval_ms", "queries", "l1_hits", "redis_hits", "misses", "stale", "errors", "qps"}
	for i := range g {
		if g[i] != w[i] {
			d = append(d, names[i]+" got "+ftoa(g[i])+" want "+ftoa(w[i]))
		}
	}
	return strings.Join(d, "; ")
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestPercentilesFromHistogram(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	ctx := t.Context()
	clk := newFakeClock()
	m := newChainMetrics()
	p := NewPublisher(PublisherConfig{Redis: c, ID: "h", Gatherer: m.reg, Now: clk.Now})

	// 40 at 0.3ms, 40 at 3ms, 20 at 300ms, over three label sets.
	for range 40 {
		m.duration.WithLabelValues("l1").Observe(0.0003)
		m.duration.WithLabelValues("resolver").Observe(0.003)
	}
	for range 20 {
		m.duration.WithLabelValues("failure").Observe(0.3)
	}
	clk.Advance(time.Second)
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	f := *byID(readFleet(t, c, clk.Now()), "h")
	// p50: rank 50 in (2.5ms, 5ms] holding 40 from 40 → 2.5+2.5×10/40.
	// p90: rank 90 in (250ms, 500ms] holding 20 from 80 → 250+250×10/20.
	// p99: rank 99 → 250+250×19/20.
	checkMs(t, "p50", f.P50Ms, 3.125)
	checkMs(t, "p90", f.P90Ms, 375)
	checkMs(t, "p99", f.P99Ms, 487.5)

	// The next publish covers only what was observed since: 10 at 30µs.
	for range 10 {
		m.duration.WithLabelValues("l1").Observe(0.00003)
	}
	clk.Advance(time.Second)
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	f = *byID(readFleet(t, c, clk.Now()), "h")
	checkMs(t, "window p50", f.P50Ms, 0.025)
	checkMs(t, "window p90", f.P90Ms, 0.045)

	// Nothing observed in the last interval: no latency to show.
	clk.Advance(time.Second)
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	f = *byID(readFleet(t, c, clk.Now()), "h")
	checkMs(t, "idle p99", f.P99Ms, 0)
}

func checkMs(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 0.0011 {
		t.Errorf("%s = %vms, want %vms", what, got, want)
	}
}

func TestRunPublishesAndLeavesOnStop(t *testing.T) {
	srv := redistest.StartN(t, 4)
	ring := newRing(t, redistest.Addrs(srv))
	m := newChainMetrics()
	p := NewPublisher(PublisherConfig{Redis: ring, ID: "run", Kind: "dnsd", Gatherer: m.reg, Interval: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		p.Run(ctx)
		close(done)
	}()
	defer func() { cancel(); <-done }()

	seen := func(queries uint64) func() bool {
		return func() bool {
			f := byID(readFleet(t, ring, time.Now()), "run")
			return f != nil && f.Queries == queries
		}
	}
	waitFor(t, 5*time.Second, "first publish", seen(0))
	m.add(7, 0, 0, 0, 0)
	waitFor(t, 5*time.Second, "a publish with 7 queries", seen(7))

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if f := byID(readFleet(t, ring, time.Now()), "run"); f != nil {
		t.Errorf("stopped frontend still listed: %+v", f)
	}
	if n, err := ring.ZCard(t.Context(), FrontendsKey).Result(); err != nil || n != 0 {
		t.Errorf("ZCARD %s = %d, %v; want 0", FrontendsKey, n, err)
	}
}

func TestDeadFrontendExpires(t *testing.T) {
	srv := redistest.StartN(t, 4)
	ring := newRing(t, redistest.Addrs(srv))
	ctx := t.Context()
	const interval = 200 * time.Millisecond
	p := NewPublisher(PublisherConfig{Redis: ring, ID: "dead", Interval: interval})
	live := NewPublisher(PublisherConfig{Redis: ring, ID: "live", Interval: time.Hour})
	// A frontend that publishes once and dies, leaving its entry behind.
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := live.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	ttl, err := ring.PTTL(ctx, FrontendKey("dead")).Result()
	if err != nil || ttl <= 0 || ttl > ExpiryIntervals*interval {
		t.Fatalf("PTTL of the entry = %v, %v; want in (0, %v]", ttl, err, ExpiryIntervals*interval)
	}
	waitFor(t, 10*time.Second, "expiry of the dead frontend", func() bool {
		return byID(readFleet(t, ring, time.Now()), "dead") == nil
	})
	if byID(readFleet(t, ring, time.Now()), "live") == nil {
		t.Fatal("the live frontend went too")
	}

	// Its id stays in the set until well past its expiry, then a reader
	// prunes it.
	if _, err := ring.ZScore(ctx, FrontendsKey, "dead").Result(); err != nil {
		t.Fatalf("dead id left the set before the grace ran out: %v", err)
	}
	readFleet(t, ring, time.Now().Add(pruneGrace+time.Second))
	if _, err := ring.ZScore(ctx, FrontendsKey, "dead").Result(); err != redis.Nil {
		t.Errorf("ZSCORE of the dead id after the grace: %v, want redis.Nil", err)
	}
	if _, err := ring.ZScore(ctx, FrontendsKey, "live").Result(); err != nil {
		t.Errorf("the live id was pruned: %v", err)
	}
}

func TestPublishToFrozenRedisGivesUp(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr)
	srv.Pause()
	t.Cleanup(srv.Resume)
	var logs procs.Buffer
	p := NewPublisher(PublisherConfig{
		Redis: c, ID: "x", Interval: 100 * time.Millisecond, Timeout: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	start := time.Now()
	if err := p.Publish(t.Context()); err == nil {
		t.Fatal("Publish to a frozen Redis succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Publish took %v against a frozen Redis", d)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		p.Run(ctx)
		close(done)
	}()
	waitFor(t, 5*time.Second, "a warning", func() bool { return strings.Contains(logs.String(), "level=WARN") })
	time.Sleep(300 * time.Millisecond) // a few more failed publishes
	srv.Resume()
	waitFor(t, 5*time.Second, "recovery logged", func() bool { return strings.Contains(logs.String(), "published again") })
	cancel()
	<-done
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings logged, want 1 for the whole outage:\n%s", n, logs.String())
	}
}
