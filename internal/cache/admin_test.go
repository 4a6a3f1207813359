package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

// allKeys returns every key on the servers, sorted.
func allKeys(t *testing.T, srv []*redistest.Server) []string {
	t.Helper()
	var out []string
	for _, s := range srv {
		keys, err := s.Client().Keys(t.Context(), "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, keys...)
	}
	slices.Sort(out)
	return out
}

// holder returns the address of the one server holding key.
func holder(t *testing.T, srv []*redistest.Server, key string) string {
	t.Helper()
	var at []string
	for _, s := range srv {
		if s.Client().Exists(t.Context(), key).Val() == 1 {
			at = append(at, s.Addr)
		}
	}
	if len(at) != 1 {
		t.Fatalf("%s is held by %v", key, at)
	}
	return at[0]
}

func TestRedisShardForAndInspect(t *testing.T) {
	srv := redistest.StartN(t, 3)
	r := newTestRing(t, srv, slowTimeout)
	ctx := t.Context()
	now := time.Now()
	keys := fill(t, r, now, "www.example.com.", "mail.example.com.", "x.example.org.", "y.example.org.")
	for _, k := range keys {
		addr, err := r.ShardFor(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if want := holder(t, srv, k); addr != want {
			t.Errorf("ShardFor(%s) = %s, held by %s", k, addr, want)
		}
		ins, err := r.Inspect(ctx, k)
		if err != nil {
			t.Fatalf("Inspect(%s): %v", k, err)
		}
		size := srv[0].Client().StrLen(ctx, k).Val() + srv[1].Client().StrLen(ctx, k).Val() + srv[2].Client().StrLen(ctx, k).Val()
		if ins.Key != k || ins.Tier != SourceRedis || ins.Shard != addr || int64(ins.Size) != size {
			t.Errorf("Inspect(%s) = key %s tier %s shard %s size %d; want shard %s size %d", k, ins.Key, ins.Tier, ins.Shard, ins.Size, addr, size)
		}
		if d := sameEntry(keyed(k, testEntry(now, time.Hour, 2*time.Hour, 40)), ins.Entry); d != "" {
			t.Errorf("Inspect(%s): %s", k, d)
		}
	}
	if _, err := r.Inspect(ctx, "dns:{absent.}:A:IN"); err != ErrMiss {
		t.Errorf("Inspect of an absent key: %v, want ErrMiss", err)
	}
	// Inspect shows an entry past StaleUntil that Redis still holds.
	k := "dns:{old.example.}:A:IN"
	old := keyed(k, testEntry(now.Add(-3*time.Hour), time.Hour, 2*time.Hour, 40))
	c, err := r.owner(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, k, old.Encode(), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, r, k)
	if ins, err := r.Inspect(ctx, k); err != nil || sameEntry(old, ins.Entry) != "" {
		t.Errorf("Inspect of an entry past StaleUntil: %v", err)
	}
	if err := c.Set(ctx, k, "junk", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Inspect(ctx, k); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Inspect of junk: %v, want ErrCorrupt", err)
	}
}

// trickyNames hold glob characters and look-alikes; no flush of one may
// touch another.
var trickyNames = []string{
	"a*b.example.", "axb.example.", "a?b.example.", "aab.example.", "[ab].example.", "a.example.", "b.example.",
	`a\\b.example.`, `a\.b.example.`, "x.", "x.}:a.", "*.example.", "www.example.",
}

func TestRedisDeleteName(t *testing.T) {
	srv := redistest.StartN(t, 4)
	r := newTestRing(t, srv, slowTimeout)
	ctx := t.Context()
	now := time.Now()
	remaining := fill(t, r, now, trickyNames...)
	if err := srv[0].Client().Set(ctx, "q:{warm}:pending", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	remaining = append(remaining, "q:{warm}:pending")
	for _, name := range trickyNames {
		gone := variants(name)
		want := holder(t, srv, gone[0])
		res, err := r.DeleteName(ctx, name)
		if err != nil {
			t.Fatalf("DeleteName(%q): %v", name, err)
		}
		if !slices.Equal(res.Shards, []string{want}) {
			t.Errorf("DeleteName(%q) searched %v, want only %s", name, res.Shards, want)
		}
		if res.Deleted != len(gone) {
			t.Errorf("DeleteName(%q) deleted %d, want %d", name, res.Deleted, len(gone))
		}
		remaining = slices.DeleteFunc(remaining, func(k string) bool { return slices.Contains(gone, k) })
		if got := allKeys(t, srv); !slices.Equal(got, slices.Sorted(slices.Values(remaining))) {
			t.Fatalf("after DeleteName(%q) the shards hold\n%q\nwant\n%q", name, got, remaining)
		}
	}
}

func TestRedisDeleteSuffix(t *testing.T) {
	srv := redistest.StartN(t, 4)
	r := newTestRing(t, srv, slowTimeout)
	ctx := t.Context()
	now := time.Now()
	var under, outside []string
	for i := range 100 {
		under = append(under, fmt.Sprintf("h%d.example.com.", i), fmt.Sprintf("a.h%d.example.com.", i))
		outside = append(outside, fmt.Sprintf("h%d.example.org.", i), fmt.Sprintf("h%dexample.com.", i))
	}
	under = append(under, "example.com.", "*.example.com.", `a\\.example.com.`)
	outside = append(outside, `a\.example.com.`, "example.com.evil.", "com.")
	gone := fill(t, r, now, under...)
	keep := fill(t, r, now, outside...)
	for _, s := range srv {
		if n := s.Client().DBSize(ctx).Val(); n < 100 {
			t.Fatalf("shard %s holds only %d keys", s.Addr, n)
		}
	}
	res, err := r.DeleteSuffix(ctx, "example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != len(gone) || !slices.Equal(res.Shards, r.Shards()) {
		t.Errorf("DeleteSuffix = %d keys on %v, want %d on %v", res.Deleted, res.Shards, len(gone), r.Shards())
	}
	if got := allKeys(t, srv); !slices.Equal(got, slices.Sorted(slices.Values(keep))) {
		t.Errorf("after the suffix flush the shards hold %d keys, want the %d outside it", len(got), len(keep))
	}

	// The root flushes every cache key and nothing else.
	if err := srv[1].Client().Set(ctx, "q:{warm}:pending", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	res, err = r.DeleteSuffix(ctx, ".")
	if err != nil || res.Deleted != len(keep) {
		t.Errorf("root flush: %d, %v; want %d", res.Deleted, err, len(keep))
	}
	if got := allKeys(t, srv); !slices.Equal(got, []string{"q:{warm}:pending"}) {
		t.Errorf("after the root flush: %q", got)
	}

	// A dead shard: the flush reports it and still clears the others.
	fill(t, r, now, under...)
	srv[2].Kill()
	res, err = r.DeleteSuffix(ctx, "example.com.")
	if err == nil && len(res.Shards) == 4 {
		t.Errorf("flush with a killed shard: no error, searched %v", res.Shards)
	}
	for _, s := range []*redistest.Server{srv[0], srv[1], srv[3]} {
		if n := s.Client().DBSize(ctx).Val(); n > 1 {
			t.Errorf("live shard %s holds %d keys after the flush", s.Addr, n)
		}
	}
}

func TestRedisDeleteBudget(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRing(t, []*redistest.Server{srv}, slowTimeout)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.DeleteSuffix(ctx, "example.com."); err == nil {
		t.Error("DeleteSuffix with a cancelled context succeeded")
	}
	// scanUnlink stops at once on a done context.
	if _, err := scanUnlink(ctx, srv.Client(), "*", func(string) bool { return true }); !errors.Is(err, context.Canceled) {
		t.Errorf("scanUnlink: %v", err)
	}
}
