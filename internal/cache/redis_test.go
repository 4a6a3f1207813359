package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

// slowTimeout is the budget for tests about data, not about faults: a
// loaded machine running -race must not fail them by timing out.
const slowTimeout = 2 * time.Second

// faultTimeout is the budget of tests that check what works while a shard
// is dead or frozen: short, but long enough for a loaded machine.
const faultTimeout = 250 * time.Millisecond

// hangBound is the "did not hang" bound for one call to a dead or frozen
// shard with the default budget.
const hangBound = time.Second

func newTestRing(t testing.TB, srv []*redistest.Server, timeout time.Duration) *Redis {
	t.Helper()
	r, err := NewRing(RedisConfig{Addrs: redistest.Addrs(srv), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func key(name, typ string) string { return "dns:{" + name + "}:" + typ + ":IN" }

// shardOf returns the address of the shard the ring sends key to now.
func shardOf(t testing.TB, r *Redis, k string) string {
	t.Helper()
	c, err := r.ring.GetShardClientForKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return c.Options().Addr
}

func TestRedisRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRing(t, []*redistest.Server{srv}, slowTimeout)
	ctx := t.Context()
	k := key("www.example.com.", "A")
	if _, err := r.Get(ctx, k); err != ErrMiss {
		t.Fatalf("Get of an absent key: %v, want ErrMiss itself", err)
	}
	e := keyed(k, testEntry(time.Now(), 300*time.Second, time.Hour, 100))
	mustSet(t, r, k, e)
	got := mustGet(t, r, k)
	if d := sameEntry(e, got); d != "" {
		t.Errorf("round trip: %s", d)
	}
	raw, err := srv.Client().Get(ctx, k).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != string(e.Encode()) {
		t.Error("Redis does not hold the encoded entry")
	}
	if err := r.Delete(ctx, k, key("absent.", "A")); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, r, k)
}

func TestRedisExpiry(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	ctx := t.Context()
	clk := newFakeClock()
	clk.t = time.Now().Add(-30 * time.Second) // this frontend's clock runs 30s behind
	r, err := NewRing(RedisConfig{Addrs: []string{srv.Addr}, Timeout: slowTimeout, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	// PX is StaleUntil minus the injected clock: 90s + 30s.
	k, late := key("k.example.", "A"), key("late.example.", "A")
	e := keyed(k, testEntry(clk.Now().Add(30*time.Second), 60*time.Second, 90*time.Second, 40))
	mustSet(t, r, k, e)
	pttl, err := c.PTTL(ctx, k).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl < 115*time.Second || pttl > 120*time.Second {
		t.Errorf("PTTL = %v, want about 120s", pttl)
	}

	// Past StaleUntil by the injected clock: Set stores nothing, Get misses.
	clk.Advance(time.Hour)
	mustSet(t, r, late, keyed(late, e))
	if n, _ := c.Exists(ctx, late).Result(); n != 0 {
		t.Error("an entry past StaleUntil was stored")
	}
	mustMiss(t, r, k)
	if n, _ := c.Exists(ctx, k).Result(); n != 1 {
		t.Error("k vanished from Redis; the miss should come from the clock")
	}

	// A short stale window really expires in Redis.
	clk.t = time.Now()
	short := testEntry(clk.Now(), 0, 150*time.Millisecond, 40)
	mustSet(t, r, "short", short)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := c.Exists(ctx, "short").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key with a 150ms expiry still there after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisCorrupt(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRing(t, []*redistest.Server{srv}, slowTimeout)
	c := srv.Client()
	ctx := t.Context()
	good := testEntry(time.Now(), time.Minute, time.Hour, 40).Encode()
	badVersion := slices.Clone(good)
	badVersion[0] = 9
	for name, v := range map[string]string{
		"text":        "hello",
		"empty":       "",
		"bad version": string(badVersion),
		"truncated":   string(good[:headerLen+10]),
	} {
		if err := c.Set(ctx, "bad", v, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		e, err := r.Get(ctx, "bad")
		if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrMiss) || e != nil {
			t.Errorf("%s: Get = %v, %v; want ErrCorrupt", name, e, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "cache: ") {
			t.Errorf("%s: error without package prefix: %v", name, err)
		}
	}
	// A key of another Redis type is an error, not a miss.
	if err := c.Del(ctx, "bad").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.LPush(ctx, "bad", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "bad"); err == nil || errors.Is(err, ErrMiss) {
		t.Errorf("Get of a list: %v, want a WRONGTYPE error", err)
	}
}

func TestRedisConfigErrors(t *testing.T) {
	if _, err := NewRing(RedisConfig{}); err == nil {
		t.Error("NewRing with no addresses succeeded")
	}
	if _, err := NewCluster(RedisConfig{}); err == nil {
		t.Error("NewCluster with no addresses succeeded")
	}
	if _, err := NewRing(RedisConfig{Addrs: []string{"127.0.0.1:1", "127.0.0.1:1"}}); err == nil {
		t.Error("NewRing with a duplicate address succeeded")
	}
}

func TestRingSpreadAndHashTag(t *testing.T) {
	srv := redistest.StartN(t, 4)
	r := newTestRing(t, srv, slowTimeout)
	ctx := t.Context()
	if got, want := r.Shards(), slices.Sorted(slices.Values(redistest.Addrs(srv))); !slices.Equal(got, want) {
		t.Errorf("Shards = %v, want %v", got, want)
	}
	e := testEntry(time.Now(), time.Minute, time.Hour, 40)
	const n = 1000
	for i := range n {
		mustSet(t, r, key(fmt.Sprintf("host%d.example.com.", i), "A"), keyed(key(fmt.Sprintf("host%d.example.com.", i), "A"), e))
	}
	var total int64
	for _, s := range srv {
		size, err := s.Client().DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("shard %s: %d keys", s.Addr, size)
		// Expect about 250; fewer than 150 would mean a skewed hash.
		if size < 150 {
			t.Errorf("shard %s holds %d of %d keys", s.Addr, size, n)
		}
		total += size
	}
	if total != n {
		t.Errorf("shards hold %d keys in all, want %d", total, n)
	}

	// Every type of one name lands on one shard.
	types := []string{"A", "AAAA", "MX", "TXT", "NS", "A:IN:do", "AAAA:IN:do:cd"}
	for i := range 50 {
		name := fmt.Sprintf("tagged%d.example.org.", i)
		for _, typ := range types {
			mustSet(t, r, key(name, typ), keyed(key(name, typ), e))
		}
		holders := 0
		for _, s := range srv {
			keys := make([]string, len(types))
			for j, typ := range types {
				keys[j] = key(name, typ)
			}
			got, err := s.Client().Exists(ctx, keys...).Result()
			if err != nil {
				t.Fatal(err)
			}
			switch got {
			case 0:
			case int64(len(types)):
				holders++
			default:
				t.Errorf("%s: shard %s holds %d of its %d keys", name, s.Addr, got, len(types))
			}
		}
		if holders != 1 {
			t.Errorf("%s: %d shards hold all its keys, want 1", name, holders)
		}
	}

	// ForEachShard visits every shard once; Ping answers.
	var mu sync.Mutex
	var seen []string
	err := r.ForEachShard(ctx, func(ctx context.Context, addr string, c *redis.Client) error {
		if err := c.Ping(ctx).Err(); err != nil {
			return err
		}
		mu.Lock()
		seen = append(seen, addr)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(seen)
	if !slices.Equal(seen, r.Shards()) {
		t.Errorf("ForEachShard visited %v, want %v", seen, r.Shards())
	}
	errBoom := errors.New("boom")
	err = r.ForEachShard(ctx, func(context.Context, string, *redis.Client) error { return errBoom })
	if !errors.Is(err, errBoom) || !strings.HasPrefix(err.Error(), "cache: shard 127.0.0.1:") {
		t.Errorf("ForEachShard error = %v", err)
	}
	if err := r.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}

	// Delete of keys on different shards removes them all.
	var del []string
	for i := range 200 {
		del = append(del, key(fmt.Sprintf("host%d.example.com.", i), "A"))
	}
	if err := r.Delete(ctx, del...); err != nil {
		t.Fatal(err)
	}
	total = 0
	for _, s := range srv {
		total += s.Client().DBSize(ctx).Val()
	}
	if want := int64(n - len(del) + 50*len(types)); total != want {
		t.Errorf("after Delete shards hold %d keys, want %d", total, want)
	}
}

// TestRingConsistentHashing checks the design's claim: a fifth shard takes
// about a fifth of the keys, and only from the others, never between them.
func TestRingConsistentHashing(t *testing.T) {
	srv := redistest.StartN(t, 5)
	four := newTestRing(t, srv[:4], slowTimeout)
	five := newTestRing(t, srv, slowTimeout)
	const n = 5000
	moved := 0
	for i := range n {
		k := key(fmt.Sprintf("n%d.example.", i), "A")
		a, b := shardOf(t, four, k), shardOf(t, five, k)
		if a != b {
			moved++
			if b != srv[4].Addr {
				t.Fatalf("%s moved from %s to %s, not to the new shard", k, a, b)
			}
		}
	}
	t.Logf("adding a 5th shard moved %d of %d keys", moved, n)
	if moved < n/10 || moved > n*3/10 {
		t.Errorf("adding a 5th shard moved %d of %d keys, want about a fifth", moved, n)
	}
}

// waitFor polls cond every 20ms until it holds or limit passes, and
// returns how long it took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// timedGet is r.Get with a hang check.
func timedGet(t *testing.T, r Tier, k string) (*Entry, error) {
	t.Helper()
	start := time.Now()
	e, err := r.Get(context.Background(), k)
	if d := time.Since(start); d > hangBound {
		t.Fatalf("Get(%s) took %v (err %v)", k, d, err)
	}
	return e, err
}

func TestRingKilledShard(t *testing.T) {
	srv := redistest.StartN(t, 3)
	r := newTestRing(t, srv, faultTimeout)
	fast := newTestRing(t, srv, 0) // the default budget, for hang checks only
	ctx := t.Context()
	dead := srv[0]
	e := testEntry(time.Now(), time.Hour, 2*time.Hour, 40)
	var deadKeys, liveKeys []string
	for i := 0; len(deadKeys) < 20 || len(liveKeys) < 20; i++ {
		k := key(fmt.Sprintf("k%d.example.", i), "A")
		if err := r.Set(ctx, k, keyed(k, e)); err != nil {
			t.Fatal(err)
		}
		if shardOf(t, r, k) == dead.Addr {
			deadKeys = append(deadKeys, k)
		} else {
			liveKeys = append(liveKeys, k)
		}
	}

	dead.Kill()
	killed := time.Now()
	// Until the ring marks it down, its keys fail fast (not a miss).
	failed := 0
	for _, k := range deadKeys[:5] {
		for _, tier := range []Tier{r, fast} {
			if _, err := timedGet(t, tier, k); err != nil && !errors.Is(err, ErrMiss) {
				failed++
			}
		}
	}
	if failed == 0 && time.Since(killed) < 400*time.Millisecond {
		t.Error("no Get of a dead shard's key failed before the ring could notice")
	}
	// Keys on live shards keep hitting.
	for _, k := range liveKeys {
		if _, err := timedGet(t, r, k); err != nil {
			t.Errorf("live shard's key %s: %v", k, err)
		}
	}

	// Once the ring marks the shard down, its keys re-hash to live shards.
	k0 := deadKeys[0]
	waitFor(t, 10*time.Second, "ring re-hashes the dead shard's keys", func() bool {
		return shardOf(t, r, k0) != dead.Addr
	})
	t.Logf("ring marked the killed shard down %v after the kill", time.Since(killed))
	for _, k := range deadKeys {
		if shardOf(t, r, k) == dead.Addr {
			t.Fatalf("%s still maps to the dead shard", k)
		}
		if _, err := timedGet(t, r, k); err != ErrMiss {
			t.Errorf("re-hashed key %s: %v, want a plain miss", k, err)
		}
		if err := r.Set(ctx, k, keyed(k, e)); err != nil {
			t.Errorf("Set re-hashed key %s: %v", k, err)
		}
		if _, err := timedGet(t, r, k); err != nil {
			t.Errorf("Get re-hashed key %s: %v", k, err)
		}
	}
	// Rendezvous hashing moves only the dead shard's keys.
	for _, k := range liveKeys {
		if _, err := timedGet(t, r, k); err != nil {
			t.Errorf("live shard's key %s after re-hash: %v", k, err)
		}
	}
	if err := r.Ping(ctx); err != nil {
		t.Errorf("Ping with 2 of 3 shards: %v", err)
	}

	// The shard comes back (empty) and gets its keys back.
	dead.Restart()
	back := time.Now()
	waitFor(t, 10*time.Second, "ring takes the restarted shard back", func() bool {
		return shardOf(t, r, k0) == dead.Addr
	})
	t.Logf("ring marked the restarted shard up %v after restart", time.Since(back))
	mustMiss(t, r, k0)
	mustSet(t, r, k0, keyed(k0, e))
	mustGet(t, r, k0)
}

func TestRingPausedShard(t *testing.T) {
	srv := redistest.StartN(t, 2)
	r := newTestRing(t, srv, faultTimeout)
	fast := newTestRing(t, srv, 0) // the default budget, for hang checks only
	ctx := t.Context()
	frozen := srv[0]
	e := testEntry(time.Now(), time.Hour, 2*time.Hour, 40)
	var k, kset, other string
	for i := 0; k == "" || kset == "" || other == ""; i++ {
		kk := key(fmt.Sprintf("p%d.example.", i), "A")
		mustSet(t, r, kk, keyed(kk, e))
		switch {
		case shardOf(t, r, kk) != frozen.Addr:
			other = kk
		case k == "":
			k = kk
		default:
			kset = kk // written during the freeze; may land anywhere
		}
	}

	frozen.Pause()
	paused := time.Now()
	var worst time.Duration
	errs := 0
	for range 5 {
		for _, tier := range []Tier{fast, r} {
			start := time.Now()
			_, err := timedGet(t, tier, k)
			worst = max(worst, time.Since(start))
			if err != nil && !errors.Is(err, ErrMiss) {
				errs++
			}
		}
	}
	t.Logf("Gets of a frozen shard's key: %d errors, slowest %v", errs, worst)
	if errs == 0 && time.Since(paused) < 400*time.Millisecond {
		t.Error("a frozen shard answered")
	}
	for _, tier := range []Tier{fast, r} {
		start := time.Now()
		err := tier.Set(ctx, kset, keyed(kset, e))
		if d := time.Since(start); d > hangBound {
			t.Errorf("Set to a frozen shard took %v (err %v)", d, err)
		}
	}
	mustGet(t, r, other)

	// The heartbeat marks it down; its keys then miss on the live shard.
	waitFor(t, 10*time.Second, "ring marks the frozen shard down", func() bool {
		return shardOf(t, r, k) != frozen.Addr
	})
	t.Logf("ring marked the frozen shard down %v after SIGSTOP", time.Since(paused))
	if _, err := timedGet(t, r, k); err != ErrMiss {
		t.Errorf("Get while the shard is down: %v, want ErrMiss", err)
	}

	frozen.Resume()
	resumed := time.Now()
	waitFor(t, 10*time.Second, "frozen shard's key hits again after Resume", func() bool {
		got, err := r.Get(ctx, k)
		return err == nil && sameEntry(keyed(k, e), got) == ""
	})
	t.Logf("key served again %v after SIGCONT", time.Since(resumed))
}

func BenchmarkRedisGet(b *testing.B) {
	srv := redistest.Start(b)
	r := newTestRing(b, []*redistest.Server{srv}, slowTimeout)
	ctx := context.Background()
	k := key("www.example.com.", "A")
	if err := r.Set(ctx, k, keyed(k, testEntry(time.Now(), time.Hour, 2*time.Hour, 120))); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Get(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
}
