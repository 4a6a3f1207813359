package cache

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

func TestParseInvalidation(t *testing.T) {
	inv := NewInvalidation("example.com.", true)
	b, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseInvalidation(b)
	if err != nil || got != inv || len(inv.ID) != 24 {
		t.Errorf("round trip: %+v, %v; want %+v", got, err, inv)
	}
	if NewInvalidation("x.", false).ID == inv.ID {
		t.Error("two invalidations share an ID")
	}
	for _, bad := range invalidationSeeds()[1:] {
		if inv, err := ParseInvalidation([]byte(bad)); err == nil {
			t.Errorf("ParseInvalidation(%.40q) = %+v", bad, inv)
		}
	}
}

// invalidationSeeds are one good message, then bad ones.
func invalidationSeeds() []string {
	return []string{
		`{"id":"abc","name":"www.example.com.","suffix":true}`,
		``, `null`, `{}`, `[]`, `"x"`,
		`{"id":"abc"}`,
		`{"name":"x."}`,
		`{"id":"abc","name":"x"}`,
		`{"id":"abc","name":""}`,
		`{"id":"` + strings.Repeat("a", 65) + `","name":"x."}`,
		`{"id":"abc","name":"` + strings.Repeat("a", 1100) + `."}`,
		`{"id":"abc","name":"x.","suffix":"yes"}`,
		strings.Repeat(" ", 3000),
	}
}

func FuzzParseInvalidation(f *testing.F) {
	for _, s := range invalidationSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := ParseInvalidation(b)
		if err != nil {
			return
		}
		if inv.ID == "" || inv.Name == "" || !strings.HasSuffix(inv.Name, ".") || len(b) > maxInvalidation {
			t.Fatalf("accepted %+v from %q", inv, b)
		}
		m := NewMemory(MemoryConfig{MaxEntries: 10})
		m.Invalidate(inv) // must not panic on any name
	})
}

// listener is one frontend's L1 subscribed to invalidations.
type listener struct {
	l1  *Memory
	sub *Subscription

	mu    sync.Mutex
	calls []Invalidation
}

func listen(t *testing.T, r *Redis) *listener {
	t.Helper()
	l := &listener{l1: NewMemory(MemoryConfig{MaxEntries: 1000})}
	l.sub = r.SubscribeInvalidations(func(inv Invalidation) {
		l.mu.Lock()
		l.calls = append(l.calls, inv)
		l.mu.Unlock()
		l.l1.Invalidate(inv)
	}, nil)
	t.Cleanup(func() { _ = l.sub.Close() })
	return l
}

func (l *listener) called() []Invalidation {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Invalidation(nil), l.calls...)
}

// waitSubscribers waits until each server counts n subscribers of
// InvalidateChannel.
func waitSubscribers(t *testing.T, srv []*redistest.Server, n int64) {
	t.Helper()
	waitFor(t, 10*time.Second, "subscribers on every shard", func() bool {
		for _, s := range srv {
			got, err := s.Client().PubSubNumSub(t.Context(), InvalidateChannel).Result()
			if err != nil || got[InvalidateChannel] != n {
				return false
			}
		}
		return true
	})
}

func TestInvalidationReachesEveryL1Once(t *testing.T) {
	srv := redistest.StartN(t, 3)
	a, b := newTestRing(t, srv, slowTimeout), newTestRing(t, srv, slowTimeout)
	la, lb := listen(t, a), listen(t, b)
	waitSubscribers(t, srv, 2)
	now := time.Now()
	for _, l := range []*listener{la, lb} {
		fill(t, l.l1, now, "www.example.com.", "mail.example.com.", "example.org.")
	}

	inv := NewInvalidation("www.example.com.", false)
	if err := a.PublishInvalidation(t.Context(), inv); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*listener{la, lb} {
		waitFor(t, 10*time.Second, "the L1 drops the name", func() bool { return l.l1.Len() == 8 })
		for _, k := range variants("mail.example.com.") {
			mustGet(t, l.l1, k)
		}
	}
	// Heard on three shards, applied once.
	suffix := NewInvalidation("example.com.", true)
	if err := b.PublishInvalidation(t.Context(), suffix); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*listener{la, lb} {
		waitFor(t, 10*time.Second, "the L1 drops the suffix", func() bool { return l.l1.Len() == 4 })
		time.Sleep(100 * time.Millisecond) // let any repeat arrive
		if got := l.called(); len(got) != 2 || got[0] != inv || got[1] != suffix {
			t.Errorf("fn called with %+v, want each invalidation once", got)
		}
	}

	// Junk on the channel is dropped; the subscription goes on.
	if err := srv[0].Client().Publish(t.Context(), InvalidateChannel, "junk").Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishInvalidation(t.Context(), NewInvalidation("example.org.", false)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the L1 drops example.org.", func() bool { return la.l1.Len() == 0 })
}

func TestSubscriptionSurvivesShardDeath(t *testing.T) {
	srv := redistest.StartN(t, 2)
	pub := newTestRing(t, srv, slowTimeout)
	l := listen(t, newTestRing(t, srv, slowTimeout))
	waitSubscribers(t, srv, 1)
	publish := func(name string) {
		t.Helper()
		fill(t, l.l1, time.Now(), name)
		// The publisher's ring may not have marked a dead shard down yet.
		waitFor(t, 10*time.Second, "publish "+name, func() bool {
			return pub.PublishInvalidation(t.Context(), NewInvalidation(name, false)) == nil
		})
		waitFor(t, 10*time.Second, "the L1 drops "+name, func() bool { return l.l1.Len() == 0 })
	}

	srv[0].Kill()
	publish("one.example.")
	srv[0].Restart()
	waitSubscribers(t, srv[:1], 1) // the subscriber came back by itself
	srv[1].Kill()
	publish("two.example.")
	// The ring of the publisher drops the killed shard and publishes on
	// the restarted one, where the subscriber listens again.
	if got := len(l.called()); got != 2 {
		t.Errorf("%d invalidations applied, want 2", got)
	}
}

func TestSubscriptionStartsWithShardsDown(t *testing.T) {
	srv := redistest.StartN(t, 1)
	r := newTestRing(t, srv, slowTimeout)
	srv[0].Kill()
	start := time.Now()
	l := listen(t, r)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("SubscribeInvalidations with its shard down took %v", d)
	}
	srv[0].Restart()
	waitSubscribers(t, srv, 1)
	fill(t, l.l1, time.Now(), "late.example.")
	waitFor(t, 10*time.Second, "publish", func() bool {
		return r.PublishInvalidation(t.Context(), NewInvalidation("late.example.", false)) == nil
	})
	waitFor(t, 10*time.Second, "the L1 drops late.example.", func() bool { return l.l1.Len() == 0 })

	// Close ends it, and a second Close is harmless.
	start = time.Now()
	if err := l.sub.Close(); err != nil {
		t.Error(err)
	}
	if err := l.sub.Close(); err != nil {
		t.Error(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	waitSubscribers(t, srv, 0)
}

func TestPublishWithNoShard(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRing(t, []*redistest.Server{srv}, faultTimeout)
	srv.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := r.PublishInvalidation(ctx, NewInvalidation("x.", false)); err == nil || !strings.HasPrefix(err.Error(), "cache: ") {
		t.Errorf("publish with the only shard dead: %v", err)
	}
}

func TestClusterAdminAndInvalidation(t *testing.T) {
	srv := startCluster(t, 3)
	r, err := NewCluster(RedisConfig{Addrs: []string{srv[0].Addr}, Timeout: slowTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := t.Context()
	l := listen(t, r)
	now := time.Now()
	keep := fill(t, r, now, trickyNames...)
	gone := fill(t, r, now, "a.example.com.", "b.example.com.", "c.d.example.com.", "example.com.")
	for _, k := range append(keep, gone...) {
		addr, err := r.ShardFor(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if want := holder(t, srv, k); addr != want {
			t.Errorf("ShardFor(%s) = %s, held by %s", k, addr, want)
		}
		if ins, err := r.Inspect(ctx, k); err != nil || ins.Shard != addr {
			t.Errorf("Inspect(%s): %+v, %v", k, ins, err)
		}
	}
	res, err := r.DeleteSuffix(ctx, "example.com.")
	if err != nil || res.Deleted != len(gone) || len(res.Shards) != 3 {
		t.Errorf("DeleteSuffix on the cluster: %+v, %v; want %d keys from 3 masters", res, err, len(gone))
	}
	res, err = r.DeleteName(ctx, "a*b.example.")
	if err != nil || res.Deleted != 4 {
		t.Errorf("DeleteName on the cluster: %+v, %v", res, err)
	}
	for _, k := range variants("axb.example.") {
		mustGet(t, r, k)
	}

	// Subscribed on one node, the listener hears a publish on any node.
	waitFor(t, 10*time.Second, "a cluster subscriber", func() bool {
		n := int64(0)
		for _, s := range srv {
			got, _ := s.Client().PubSubNumSub(ctx, InvalidateChannel).Result()
			n += got[InvalidateChannel]
		}
		return n == 1
	})
	fill(t, l.l1, now, "www.example.net.")
	if err := r.PublishInvalidation(ctx, NewInvalidation("www.example.net.", false)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the L1 drops the name", func() bool { return l.l1.Len() == 0 })
}
