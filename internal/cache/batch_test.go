package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

// keyedEntry returns an entry whose message names key, so a test can tell
// whose value a Get returned.
func keyedEntry(now time.Time, key string) *Entry {
	return keyed(key, testEntry(now, time.Hour, 2*time.Hour, 40))
}

// connectedClients returns INFO's connected_clients of s.
func connectedClients(t *testing.T, s *redistest.Server) int {
	t.Helper()
	info, err := s.Client().Info(t.Context(), "clients").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_clients:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no connected_clients in %q", info)
	return 0
}

func TestBatchConcurrentGets(t *testing.T) {
	srv := redistest.StartN(t, 4)
	r := newTestRing(t, srv, slowTimeout)
	now := time.Now()
	const nKeys = 200
	keys := make([]string, nKeys)
	for i := range keys {
		keys[i] = key(fmt.Sprintf("c%d.example.", i), "A")
		if i%10 != 0 { // every tenth key stays absent
			mustSet(t, r, keys[i], keyedEntry(now, keys[i]))
		}
	}
	before := make([]int, len(srv))
	for i, s := range srv {
		before[i] = connectedClients(t, s)
	}

	const workers, rounds = 64, 40
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				k := keys[(w*rounds+i*7)%nKeys]
				got, err := r.Get(t.Context(), k)
				switch {
				case (w*rounds+i*7)%nKeys%10 == 0:
					if !errors.Is(err, ErrMiss) {
						bad.Add(1)
						t.Errorf("Get(%s) of an absent key: %v, want ErrMiss", k, err)
					}
				case err != nil:
					bad.Add(1)
					t.Errorf("Get(%s): %v", k, err)
				case !strings.HasSuffix(string(got.Msg), k):
					bad.Add(1)
					t.Errorf("Get(%s) returned another key's value", k)
				}
				if bad.Load() > 5 {
					return
				}
			}
		})
	}
	wg.Wait()

	// One loop per shard: at most one connection of the ring's pool is busy
	// with Gets, one more may carry a heartbeat PING; the rest are the
	// test's own clients. One call per Get would open a connection per
	// concurrent caller.
	for i, s := range srv {
		after := connectedClients(t, s)
		t.Logf("shard %s: %d clients before the load, %d after", s.Addr, before[i], after)
		if after > before[i]+3 {
			t.Errorf("shard %s: %d connections after %d concurrent callers (was %d): Gets were not batched",
				s.Addr, after, workers, before[i])
		}
	}
}

func TestBatchPausedShardCostsOnlyItsKeys(t *testing.T) {
	srv := redistest.StartN(t, 3)
	r := newTestRing(t, srv, faultTimeout)
	frozen := srv[0]
	now := time.Now()
	var frozenKeys, otherKeys []string
	for i := 0; len(frozenKeys) < 20 || len(otherKeys) < 40; i++ {
		k := key(fmt.Sprintf("f%d.example.", i), "A")
		mustSet(t, r, k, keyedEntry(now, k))
		if shardOf(t, r, k) == frozen.Addr {
			frozenKeys = append(frozenKeys, k)
		} else {
			otherKeys = append(otherKeys, k)
		}
	}

	frozen.Pause()
	defer frozen.Resume()
	// Until the heartbeat marks the shard down (three failed pings, about
	// 750 ms), its keys still go to it. Callers of both kinds run side by
	// side, so the other shards' keys share their loops' pipelines with
	// each other while the frozen shard's pipeline hangs.
	stop := time.Now().Add(3 * faultTimeout)
	// A Get queued behind the frozen shard's pipeline still returns within
	// its own budget, not after that pipeline's budget and then its own.
	const slowFrozen = faultTimeout + 200*time.Millisecond
	var wg sync.WaitGroup
	var mu sync.Mutex
	var frozenErrs, frozenSlowest, otherErrs, otherGets int
	var otherSlowest time.Duration
	var worstFrozen time.Duration
	for w := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				k := frozenKeys[(w+i)%len(frozenKeys)]
				start := time.Now()
				_, err := r.Get(context.Background(), k)
				d := time.Since(start)
				mu.Lock()
				worstFrozen = max(worstFrozen, d)
				if err != nil && !errors.Is(err, ErrMiss) {
					frozenErrs++
				}
				if d > slowFrozen {
					frozenSlowest++
				}
				mu.Unlock()
			}
		})
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				k := otherKeys[(w*5+i)%len(otherKeys)]
				start := time.Now()
				got, err := r.Get(context.Background(), k)
				d := time.Since(start)
				mu.Lock()
				otherGets++
				otherSlowest = max(otherSlowest, d)
				if err != nil || !strings.HasSuffix(string(got.Msg), k) {
					otherErrs++
					if otherErrs <= 3 {
						t.Errorf("Get(%s) of a live shard's key during the freeze: %v", k, err)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("frozen shard's keys: %d errors, slowest %v; other keys: %d Gets, slowest %v",
		frozenErrs, worstFrozen, otherGets, otherSlowest)
	if frozenErrs == 0 {
		t.Error("no Get of the frozen shard's keys failed: was it frozen?")
	}
	if frozenSlowest > 0 {
		t.Errorf("%d Gets of the frozen shard's keys took longer than %v", frozenSlowest, slowFrozen)
	}
	if otherGets < 100 {
		t.Errorf("only %d Gets of live shards' keys in %v: they were held up", otherGets, 3*faultTimeout)
	}
}

func TestBatchCallerDeadline(t *testing.T) {
	srv := redistest.StartN(t, 2)
	r := newTestRing(t, srv, slowTimeout)
	frozen := srv[0]
	now := time.Now()
	var k string
	for i := 0; k == ""; i++ {
		kk := key(fmt.Sprintf("d%d.example.", i), "A")
		mustSet(t, r, kk, keyedEntry(now, kk))
		if shardOf(t, r, kk) == frozen.Addr {
			k = kk
		}
	}
	frozen.Pause()
	resumed := false
	defer func() {
		if !resumed {
			frozen.Resume()
		}
	}()

	// A caller canceled while its Get is in flight, one queued behind it,
	// one with a short deadline, one already canceled: each returns at once
	// with its own context's error, not after the 2 s budget.
	cases := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"canceled in flight", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
		{"canceled before", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
	}
	var wg sync.WaitGroup
	for _, tc := range cases {
		for range 3 { // the first may be in flight, the others queued
			wg.Go(func() {
				ctx, cancel := tc.ctx()
				defer cancel()
				start := time.Now()
				_, err := r.Get(ctx, k)
				if d := time.Since(start); d > 500*time.Millisecond {
					t.Errorf("%s: Get returned after %v", tc.name, d)
				}
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: Get = %v, want %v", tc.name, err, tc.want)
				}
			})
		}
	}
	wg.Wait()

	// The shard's loop is not stuck: once the shard answers, so does Get.
	frozen.Resume()
	resumed = true
	waitFor(t, 5*time.Second, "Get of the resumed shard's key hits", func() bool {
		got, err := r.Get(t.Context(), k)
		return err == nil && strings.HasSuffix(string(got.Msg), k)
	})
}

func TestBatchClose(t *testing.T) {
	srv := redistest.Start(t)
	r, err := NewRing(RedisConfig{Addrs: []string{srv.Addr}, Timeout: slowTimeout})
	if err != nil {
		t.Fatal(err)
	}
	k := key("close.example.", "A")
	mustSet(t, r, k, keyedEntry(time.Now(), k))
	mustGet(t, r, k)

	// Close while a Get waits on a frozen shard: the Get returns an error
	// promptly, and the loops end (goleak checks at the end of the run).
	srv.Pause()
	defer srv.Resume()
	done := make(chan error, 1)
	go func() {
		_, err := r.Get(context.Background(), k)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || errors.Is(err, ErrMiss) {
			t.Errorf("Get during Close = %v, want an error", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Get did not return after Close")
	}
	t.Logf("Close took %v", time.Since(start))
	if _, err := r.Get(context.Background(), k); err == nil || errors.Is(err, ErrMiss) {
		t.Errorf("Get after Close = %v, want an error", err)
	}
	if err := r.Close(); err != nil {
		t.Logf("second Close: %v", err)
	}
}

func TestBatchConfig(t *testing.T) {
	if _, err := NewRing(RedisConfig{Addrs: []string{"127.0.0.1:1"}, MaxBatch: -1}); err == nil {
		t.Error("NewRing accepted a negative MaxBatch")
	}
	r, err := NewRing(RedisConfig{Addrs: []string{"127.0.0.1:1"}, MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.batch != nil {
		t.Error("MaxBatch 1 should turn batching off")
	}
}

// BenchmarkRedisGetParallel compares Gets from many goroutines over four
// shards, batched into pipelines per shard and one call per Get.
func BenchmarkRedisGetParallel(b *testing.B) {
	srv := redistest.StartN(b, 4)
	now := time.Now()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = key(fmt.Sprintf("b%d.example.", i), "A")
	}
	for _, bc := range []struct {
		name     string
		maxBatch int
	}{{"batched", 0}, {"single", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			r := filledRing(b, RedisConfig{Addrs: redistest.Addrs(srv), Timeout: slowTimeout, MaxBatch: bc.maxBatch}, keys, now)
			var next atomic.Uint64
			b.SetParallelism(32) // a DNS frontend has many queries in flight
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(1) * 7919
				for pb.Next() {
					i++
					if _, err := r.Get(context.Background(), keys[i%uint64(len(keys))]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if r.batch != nil && r.batch.calls.Load() > 0 {
				b.ReportMetric(float64(r.batch.keys.Load())/float64(r.batch.calls.Load()), "keys/call")
			}
		})
	}
}

func TestBatchClusterConcurrentGets(t *testing.T) {
	srv := startCluster(t, 3)
	r, err := NewCluster(RedisConfig{Addrs: []string{srv[0].Addr}, Timeout: slowTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	now := time.Now()
	keys := make([]string, 90)
	for i := range keys {
		keys[i] = key(fmt.Sprintf("cl%d.example.", i), "A")
		mustSet(t, r, keys[i], keyedEntry(now, keys[i]))
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := range 32 {
		wg.Go(func() {
			for i := range 30 {
				k := keys[(w*30+i*11)%len(keys)]
				got, err := r.Get(t.Context(), k)
				if err != nil || !strings.HasSuffix(string(got.Msg), k) {
					if bad.Add(1) <= 3 {
						t.Errorf("Get(%s) on the cluster: %v, or another key's value", k, err)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	if calls, n := r.batch.calls.Load(), r.batch.keys.Load(); calls == 0 || n != 32*30 {
		t.Errorf("batcher sent %d keys in %d calls, want %d keys", n, calls, 32*30)
	} else {
		t.Logf("%d keys in %d calls to the masters", n, calls)
	}
}

// GetMany returns for each key what Get returns for it (hits, absent
// keys, corrupt values, entries past their stale window), from a few
// MGETs per shard, and Layered.GetMany copies its L2 hits into L1 as Get does.
func TestGetManyMatchesGet(t *testing.T) {
	srv := redistest.StartN(t, 4)
	r := newTestRing(t, srv, slowTimeout)
	now := time.Now()
	var keys []string
	for i := range 60 {
		k := key(fmt.Sprintf("m%d.example.", i), "A")
		keys = append(keys, k)
		switch i % 6 {
		case 0: // absent
		case 1: // corrupt bytes
			if err := r.ring.Set(t.Context(), k, []byte{0xff, 1, 2}, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
		case 2: // past its stale window, still held by Redis
			old := keyedEntry(now.Add(-3*time.Hour), k)
			if err := r.ring.Set(t.Context(), k, old.Encode(), time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
		default:
			mustSet(t, r, k, keyedEntry(now, k))
		}
	}
	calls0 := r.batch.calls.Load()
	es, errs := make([]*Entry, len(keys)), make([]error, len(keys))
	if !r.GetMany(t.Context(), keys, es, errs) {
		t.Fatal("a Ring tier refused to read a batch")
	}
	// A GetMany's keys of one shard go to its loop as one request: one
	// call per shard (a call per key would be 60).
	if calls := r.batch.calls.Load() - calls0; calls > uint64(len(srv)) {
		t.Errorf("%d keys on %d shards read in %d calls, want one per shard", len(keys), len(srv), calls)
	}
	for i, k := range keys {
		want, wantErr := r.Get(t.Context(), k)
		switch {
		case (errs[i] == nil) != (wantErr == nil),
			errors.Is(errs[i], ErrMiss) != errors.Is(wantErr, ErrMiss),
			errors.Is(errs[i], ErrCorrupt) != errors.Is(wantErr, ErrCorrupt):
			t.Errorf("%s: GetMany err %v, Get err %v", k, errs[i], wantErr)
		case wantErr == nil:
			if d := sameEntry(es[i], want); d != "" {
				t.Errorf("%s: GetMany and Get differ: %s", k, d)
			}
		}
	}

	mem := NewMemory(MemoryConfig{MaxEntries: 1000, MaxBytes: 1 << 20})
	l := NewLayered(mem, r)
	got := make([]Got, len(keys))
	if !l.GetMany(t.Context(), keys, got) {
		t.Fatal("Layered over a Ring refused to read a batch")
	}
	for i, k := range keys {
		wantHit := i%6 > 2
		if (got[i].Err == nil) != wantHit || (wantHit && got[i].Source != SourceRedis) {
			t.Errorf("%s: first Layered.GetMany %s, %v; want a Redis hit: %v", k, got[i].Source, got[i].Err, wantHit)
		}
	}
	l.GetMany(t.Context(), keys, got)
	for i, k := range keys {
		if i%6 > 2 && got[i].Source != SourceL1 {
			t.Errorf("%s: second Layered.GetMany from %q, want L1", k, got[i].Source)
		}
	}

	// GetManyL2 is for keys L1 just missed: it reads Redis alone, and
	// copies its hits into L1 as GetMany does.
	mem2 := NewMemory(MemoryConfig{MaxEntries: 1000, MaxBytes: 1 << 20})
	l2 := NewLayered(mem2, r)
	planted := keyedEntry(now, keys[0]) // absent from Redis, held by L1
	if err := mem2.Set(t.Context(), keys[0], planted); err != nil {
		t.Fatal(err)
	}
	if !l2.GetManyL2(t.Context(), keys, got) {
		t.Fatal("Layered over a Ring refused to read a batch from L2")
	}
	if !errors.Is(got[0].Err, ErrMiss) {
		t.Errorf("GetManyL2 of a key L1 holds and Redis lacks: %v from %q, want a miss (L2 alone)", got[0].Err, got[0].Source)
	}
	for i, k := range keys {
		wantHit := i%6 > 2
		if (got[i].Err == nil) != wantHit || (wantHit && got[i].Source != SourceRedis) {
			t.Errorf("%s: GetManyL2 %s, %v; want a Redis hit: %v", k, got[i].Source, got[i].Err, wantHit)
		}
		if e, _, ok := l2.GetL1([]byte(k)); wantHit && (!ok || e != got[i].Entry) {
			t.Errorf("%s: GetManyL2's Redis hit not copied into L1", k)
		}
	}

	r.Close()
	if l.GetMany(t.Context(), keys, got); got[0].Err == nil || errors.Is(got[0].Err, ErrMiss) {
		t.Errorf("GetMany of an absent key on a closed tier: %v, want a read error", got[0].Err)
	}
}

// SetAsync returns at once; its writes reach Redis in pipelines of many,
// each reported once to its done; a frozen shard fails its own writes
// within the budget and holds up no caller; Close sends what is queued.
func TestSetAsync(t *testing.T) {
	srv := redistest.StartN(t, 3)
	r := newTestRing(t, srv, faultTimeout)
	now := time.Now()
	const n = 300
	keys := make([]string, n)
	errs := make(chan error, n)
	for i := range keys {
		keys[i] = key(fmt.Sprintf("s%d.example.", i), "A")
		if !r.SetAsync(keys[i], keyedEntry(now, keys[i]), func(err error) { errs <- err }) {
			t.Fatal("a Ring tier refused to write without waiting")
		}
	}
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("write: %v", err)
			}
		case <-time.After(hangBound):
			t.Fatal("a write was never reported")
		}
	}
	if calls := r.batch.setCalls.Load(); calls > n/4 {
		t.Errorf("%d writes sent in %d pipelines, want them batched", n, calls)
	}
	for _, k := range keys {
		e, err := r.Get(t.Context(), k)
		if err != nil || !strings.HasSuffix(string(e.Msg), k) {
			t.Fatalf("Get(%s) after its write: %v", k, err)
		}
	}

	frozen := srv[0]
	var frozenKey, liveKey string
	for i := 0; frozenKey == "" || liveKey == ""; i++ {
		k := key(fmt.Sprintf("z%d.example.", i), "A")
		if shardOf(t, r, k) == frozen.Addr {
			frozenKey = k
		} else {
			liveKey = k
		}
	}
	frozen.Pause()
	start := time.Now()
	r.SetAsync(frozenKey, keyedEntry(now, frozenKey), func(err error) { errs <- err })
	r.SetAsync(liveKey, keyedEntry(now, liveKey), func(err error) { errs <- err })
	if d := time.Since(start); d > faultTimeout/2 {
		t.Errorf("SetAsync to a frozen shard held its caller %v", d)
	}
	var failed int
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				failed++
			}
		case <-time.After(hangBound):
			t.Fatal("a write was never reported while a shard was frozen")
		}
	}
	frozen.Resume()
	if failed != 1 {
		t.Errorf("%d of 2 writes failed, want the frozen shard's one", failed)
	}

	// Close sends what is still queued.
	last := key("last.example.", "A")
	r.SetAsync(last, keyedEntry(now, last), func(err error) { errs <- err })
	r.Close()
	if err := <-errs; err != nil {
		t.Errorf("a write queued before Close: %v", err)
	}
	var found int64
	for _, s := range srv {
		n, err := s.Client().Exists(t.Context(), last).Result()
		if err != nil {
			t.Fatal(err)
		}
		found += n
	}
	if found != 1 {
		t.Errorf("the write queued before Close is on %d shards, want 1", found)
	}
}

// A GetMany's keys of one shard go out in calls of at most MaxBatch keys,
// each answered in its place.
func TestGetManyMaxBatch(t *testing.T) {
	srv := redistest.StartN(t, 1)
	r, err := NewRing(RedisConfig{Addrs: redistest.Addrs(srv), Timeout: slowTimeout, MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	now := time.Now()
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = key(fmt.Sprintf("x%d.example.", i), "A")
		if i%3 != 0 {
			mustSet(t, r, keys[i], keyedEntry(now, keys[i]))
		}
	}
	calls0, keys0 := r.batch.calls.Load(), r.batch.keys.Load()
	es, errs := make([]*Entry, len(keys)), make([]error, len(keys))
	if !r.GetMany(t.Context(), keys, es, errs) {
		t.Fatal("a Ring tier refused to read a batch")
	}
	calls, sent := r.batch.calls.Load()-calls0, r.batch.keys.Load()-keys0
	if sent != uint64(len(keys)) || calls < 3 {
		t.Errorf("%d keys sent in %d calls with MaxBatch 4, want 10 in at least 3", sent, calls)
	}
	for i, k := range keys {
		if i%3 == 0 {
			if !errors.Is(errs[i], ErrMiss) {
				t.Errorf("%s: %v, want a miss", k, errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("%s: %v", k, errs[i])
			continue
		}
		if d := sameEntry(es[i], keyedEntry(now, k)); d != "" {
			t.Errorf("%s: %s", k, d)
		}
	}
}

// filledRing is a Ring over cfg holding an entry of an hour under each of
// keys, stored at now; it is closed when the benchmark ends.
func filledRing(b *testing.B, cfg RedisConfig, keys []string, now time.Time) *Redis {
	b.Helper()
	r, err := NewRing(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	for _, k := range keys {
		if err := r.Set(context.Background(), k, keyed(k, testEntry(now, time.Hour, 2*time.Hour, 120))); err != nil {
			b.Fatal(err)
		}
	}
	return r
}
