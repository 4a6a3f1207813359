package cachelab

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

func testKeys(t *testing.T, n int) []item {
	t.Helper()
	items, err := buildUniverse(n, nil, 5)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func keysOf(items []item) []string {
	out := make([]string, len(items))
	for i := range items {
		out[i] = items[i].Key
	}
	return out
}

func TestMovedShare(t *testing.T) {
	for _, tc := range []struct {
		a, b []string
		want float64
	}{
		{[]string{"x", "y", "x", "y"}, []string{"x", "y", "x", "y"}, 0},
		{[]string{"x", "y", "x", "y"}, []string{"x", "z", "x", "z"}, 0.5},
		{[]string{"x"}, []string{"y"}, 1},
		{nil, nil, 0},
		{[]string{"x"}, []string{"x", "y"}, 0},
	} {
		if got := movedShare(tc.a, tc.b); got != tc.want {
			t.Errorf("movedShare(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestExpectedMoves(t *testing.T) {
	if got := expectedModNMoved(4); got != 0.8 {
		t.Errorf("mod N 4→5 moves %v, want 0.8", got)
	}
	if got := expectedConsistentMoved(4); got != 0.2 {
		t.Errorf("consistent 4→5 moves %v, want 0.2", got)
	}
}

// TestModNMovesMostKeys checks hash-mod-N over the real key schema against
// the n/(n+1) the arithmetic predicts.
func TestModNMovesMostKeys(t *testing.T) {
	keys := keysOf(testKeys(t, 20_000))
	for n := 1; n <= 8; n++ {
		got := movedShare(modNPlacement(keys, n), modNPlacement(keys, n+1))
		if want := expectedModNMoved(n); math.Abs(got-want) > 0.02 {
			t.Errorf("mod N %d→%d moved %.3f of the keys, want %.3f", n, n+1, got, want)
		}
	}
	for _, k := range keys[:100] {
		s, err := strconv.Atoi(modNShard(k, 5))
		if err != nil || s < 0 || s >= 5 {
			t.Fatalf("modNShard(%q, 5) = %q", k, modNShard(k, 5))
		}
	}
}

func TestShardBalance(t *testing.T) {
	pl := []string{"a", "a", "a", "b"}
	got, per := shardBalance(pl, []string{"a", "b"}, nil)
	if got != 1.5 || per["a"] != 3 || per["b"] != 1 {
		t.Errorf("balance %v %v, want 1.5 with a=3 b=1", got, per)
	}
	// A shard with no key still counts in the mean.
	if got, _ := shardBalance(pl, []string{"a", "b", "c", "d"}, nil); got != 3 {
		t.Errorf("balance over 4 shards = %v, want 3", got)
	}
	// Weighted by requests: b's one key is asked 5 times.
	if got, _ := shardBalance(pl, []string{"a", "b"}, []float64{1, 1, 1, 5}); got != 5.0/4 {
		t.Errorf("weighted balance = %v, want 1.25", got)
	}
}

// TestRingMovesAFifth asks real go-redis Rings, built by internal/cache,
// where keys live with four and with five shards: about a fifth move, and
// every key that moves goes to the new shard.
func TestRingMovesAFifth(t *testing.T) {
	srv := redistest.StartN(t, 5)
	addrs := redistest.Addrs(srv)
	items := testKeys(t, 10_000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	four, err := ringPlacement(ctx, addrs[:4], items)
	if err != nil {
		t.Fatal(err)
	}
	five, err := ringPlacement(ctx, addrs, items)
	if err != nil {
		t.Fatal(err)
	}
	if got := movedShare(four, five); math.Abs(got-0.2) > 0.03 {
		t.Errorf("Ring 4→5 moved %.3f of the keys, want about 0.2", got)
	}
	for i := range four {
		if four[i] != five[i] && five[i] != addrs[4] {
			t.Fatalf("key %s moved from %s to %s, not to the new shard", items[i].Key, four[i], five[i])
		}
	}
	if bal, _ := shardBalance(five, addrs, nil); bal < 1 || bal > 1.15 {
		t.Errorf("Ring over 5 shards: busiest shard %.3f of the mean", bal)
	}
}
