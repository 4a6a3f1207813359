package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/redis/go-redis/v9"
)

// queryAll sends one A query per name and fails the test for any answer
// that is not NOERROR with one record, or that took longer than hangBound.
// It returns the slowest answer's time.
func queryAll(t *testing.T, addr string, names []string) time.Duration {
	t.Helper()
	var slowest time.Duration
	for _, name := range names {
		r, d, err := timedExchange(addr, name, dns.TypeA)
		slowest = max(slowest, d)
		switch {
		case err != nil:
			t.Errorf("%s: %v after %v", name, err, d)
		case r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1:
			t.Errorf("%s: %s with %d answers, want NOERROR with one", name, dns.RcodeToString[r.Rcode], len(r.Answer))
		case d > hangBound:
			t.Errorf("%s: answered after %v, over the %v hang bound", name, d, hangBound)
		}
	}
	return slowest
}

// TestShardFrozenDoesNotStallAnswers freezes one shard with SIGSTOP (its
// socket accepts but never answers, like a blackholed host): every query,
// cached or new, is still answered without waiting on it, and once it runs
// again the Ring sends it keys again.
func TestShardFrozenDoesNotStallAnswers(t *testing.T) {
	f := startFleet(t)
	var warm []string
	for i := range 100 {
		warm = append(warm, spread("w", i))
	}
	queryAll(t, f.dns, warm)
	const frozen = 2
	cl := f.shards[frozen].Client()
	ctx := context.Background()
	if n, err := cl.DBSize(ctx).Result(); err != nil || n == 0 {
		t.Fatalf("shard %d holds %d keys before the freeze (%v): the test needs keys on it", frozen, n, err)
	}
	errs0 := metric(t, f.metrics, `shardns_cache_errors_total{op="get"}`)

	f.shards[frozen].Pause()
	var mixed []string // cached names (some on the frozen shard) and new ones
	for i := range 100 {
		mixed = append(mixed, warm[i], spread("p", i))
	}
	slowest := queryAll(t, f.dns, mixed)
	errs := metric(t, f.metrics, `shardns_cache_errors_total{op="get"}`) - errs0
	t.Logf("shard frozen: %d queries, slowest %v, %v cache read errors", len(mixed), slowest, errs)
	if errs == 0 {
		t.Errorf("no cache read errors while shard %d was frozen: the freeze was never felt", frozen)
	}

	f.shards[frozen].Resume()
	if err := cl.Ping(ctx).Err(); err != nil {
		t.Fatalf("shard %d after resume: %v", frozen, err)
	}
	time.Sleep(300 * time.Millisecond) // let it work through what queued while frozen
	base, err := cl.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	took, ok := poll(10*time.Second, 100*time.Millisecond, func() bool {
		var batch []string
		for range 20 {
			batch = append(batch, spread("r", i))
			i++
		}
		queryAll(t, f.dns, batch)
		for _, name := range batch {
			if n, err := cl.Exists(ctx, cacheKey(name)).Result(); err == nil && n == 1 {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("shard %d got none of %d names queried in %v after it resumed", frozen, i, took)
	}
	after, err := cl.DBSize(ctx).Result()
	if err != nil || after <= base {
		t.Errorf("shard %d DBSIZE %d after new names, %d before (%v): want it to grow", frozen, after, base, err)
	}
	t.Logf("shard used again %v after resume (%d new names); DBSIZE %d -> %d", took, i, base, after)
}

// TestAllShardsKilledThenRestarted kills every shard: dnsd answers from
// resolverd without hanging and counts each failed cache read; restarted
// on the same ports, the shards are used again without restarting dnsd.
func TestAllShardsKilledThenRestarted(t *testing.T) {
	f := startFleet(t)
	var names []string
	for i := range 40 {
		names = append(names, spread("k", i))
	}
	queryAll(t, f.dns, names)
	errs0 := metric(t, f.metrics, `shardns_cache_errors_total{op="get"}`)
	for _, s := range f.shards {
		s.Kill()
	}
	for i := range 40 {
		names = append(names, spread("d", i))
	}
	slowest := queryAll(t, f.dns, names)
	errs := metric(t, f.metrics, `shardns_cache_errors_total{op="get"}`) - errs0
	t.Logf("all shards down: %d queries, slowest %v, %v cache read errors", len(names), slowest, errs)
	if errs < float64(len(names)) {
		t.Errorf("cache read errors grew by %v over %d lookups with every shard down: want one per lookup", errs, len(names))
	}
	if r := dig(t, f.dns, "www.shardns.test", "A"); r.Status != "NOERROR" || len(r.Answer) != 1 {
		t.Errorf("dig with every shard down: %s %v", r.Status, r.Answer)
	}

	var clients []*redis.Client
	for _, s := range f.shards {
		s.Restart()
		clients = append(clients, s.Client())
	}
	// Each try asks a new name, waits for its write to land, and asks it
	// again. Until the Ring sees every shard up, a name may be written to
	// a shard that is not its own once all are; a new name per try leaves
	// such a name behind.
	hits0 := metric(t, f.metrics, `shardns_lookup_answers_total{source="redis"}`)
	var name string
	tries := 0
	took, ok := poll(15*time.Second, 200*time.Millisecond, func() bool {
		name = spread("r", tries)
		tries++
		queryAll(t, f.dns, []string{name})
		if _, held := poll(time.Second, 10*time.Millisecond, func() bool { return storedOn(t, clients, name) > 0 }); !held {
			return false
		}
		queryAll(t, f.dns, []string{name})
		return metric(t, f.metrics, `shardns_lookup_answers_total{source="redis"}`) > hits0
	})
	if !ok {
		t.Fatalf("no answer from Redis within %v of the shards restarting (%d names tried)", took, tries)
	}
	if n := storedOn(t, clients, name); n != 1 {
		t.Errorf("%s stored on %d restarted shards, want 1", name, n)
	}
	t.Logf("answers from Redis again %v after the shards restarted (%d names tried)", took, tries)
}

// storedOn says how many of shards hold name's A record.
func storedOn(t *testing.T, shards []*redis.Client, name string) int {
	t.Helper()
	n := 0
	for _, c := range shards {
		held, err := c.Exists(context.Background(), cacheKey(name)).Result()
		if err != nil {
			t.Errorf("shard %s: %v", c.Options().Addr, err)
		}
		n += int(held)
	}
	return n
}
