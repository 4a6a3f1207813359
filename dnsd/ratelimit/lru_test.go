package ratelimit

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// v4Prefix returns an address in the i-th distinct /24.
func v4Prefix(i int) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(i)<<8|1)
	return netip.AddrFrom4(b)
}

// v6Prefix returns an address in the i-th distinct /56 under 2001:db8::/32.
func v6Prefix(i int) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], 0x20010db8<<32|uint64(i)<<8)
	b[15] = 1
	return netip.AddrFrom16(b)
}

// checkShards verifies every shard's index, slice and list agree.
func checkShards(t *testing.T, l *Limiter, maxTracked int) {
	t.Helper()
	total := 0
	for si := range l.cur.Load().shards {
		s := &l.cur.Load().shards[si]
		s.mu.Lock()
		if len(s.idx) != len(s.ents) || len(s.ents) > s.limit || int(s.tracked.Load()) != len(s.ents) {
			t.Fatalf("shard %d: %d indexed, %d entries, %d tracked, limit %d", si, len(s.idx), len(s.ents), s.tracked.Load(), s.limit)
		}
		n, prev := 0, int32(-1)
		for i := s.head; i >= 0; i = s.ents[i].next {
			if s.ents[i].prev != prev || s.idx[s.ents[i].k] != i || n > len(s.ents) {
				t.Fatalf("shard %d: list broken at entry %d", si, i)
			}
			prev = i
			n++
		}
		if n != len(s.ents) || s.tail != prev {
			t.Fatalf("shard %d: list has %d of %d entries, tail %d want %d", si, n, len(s.ents), s.tail, prev)
		}
		total += s.limit
		s.mu.Unlock()
	}
	if total > maxTracked {
		t.Fatalf("shard limits sum to %d, over MaxTracked %d", total, maxTracked)
	}
}

func TestMaxTrackedBound(t *testing.T) {
	for _, tt := range []struct {
		maxTracked, want int
		prefix           func(int) netip.Addr
	}{
		{maxTracked: 1000, want: 1000, prefix: v4Prefix},
		{maxTracked: 1000, want: 1000, prefix: v6Prefix},
		{maxTracked: 0, want: DefaultMaxTracked, prefix: v4Prefix},
		{maxTracked: 1, want: 1, prefix: v6Prefix},
		{maxTracked: 37, want: 37, prefix: v4Prefix},
	} {
		l, c := newLimiter(Config{Rate: 1, MaxTracked: tt.maxTracked})
		const n = 100_000 + 500
		for i := range n {
			l.Check(tt.prefix(i))
			if i%10_000 == 0 {
				c.Advance(1)
				if got := l.Stats().Tracked; got > tt.want {
					t.Fatalf("MaxTracked %d: %d tracked after %d prefixes", tt.maxTracked, got, i+1)
				}
			}
		}
		s := l.Stats()
		if s.Tracked > tt.want || s.Tracked < tt.want/2 {
			t.Errorf("MaxTracked %d: %d tracked after %d prefixes, want at most %d and most of that used",
				tt.maxTracked, s.Tracked, n, tt.want)
		}
		if s.Allowed != n {
			t.Errorf("MaxTracked %d: %d allowed, want %d (each new prefix has a full bucket)", tt.maxTracked, s.Allowed, n)
		}
		checkShards(t, l, tt.want)
	}
}

func TestLeastRecentlyUsedEvicted(t *testing.T) {
	l, _ := newLimiter(Config{Rate: 1, MaxTracked: 1000, Slip: -1})
	hot, cold := addr("203.0.113.1"), addr("198.51.100.1")
	if !drained(l, hot, 1) || !drained(l, cold, 1) {
		t.Fatal("prefixes not limited after their burst")
	}
	// A flood of other prefixes, while hot keeps asking: hot stays
	// tracked (and limited), cold is forgotten.
	for i := range 100_000 {
		l.Check(v4Prefix(i + 1<<20))
		if got := l.Check(hot); got != Drop {
			t.Fatalf("hot prefix after %d others: %v, want drop", i+1, got)
		}
	}
	if got := l.Check(cold); got != Allow {
		t.Errorf("cold prefix after the flood: %v, want allow (evicted, fresh bucket)", got)
	}
	checkShards(t, l, 1000)
}

func TestShardLRUOrder(t *testing.T) {
	lim, _ := newLimiter(Config{Rate: 1})
	l := lim.cur.Load()
	var s shard
	s.init(3)
	k := func(i uint64) key { return key{lo: i} }
	for i := range uint64(3) {
		s.get(l, k(i), 0)
	}
	s.get(l, k(0), 0) // 0 is now the most recent; 1 the least
	s.get(l, k(3), 0) // evicts 1
	if _, ok := s.idx[k(1)]; ok {
		t.Error("key 1 still tracked, want evicted")
	}
	var order []uint64
	for i := s.head; i >= 0; i = s.ents[i].next {
		order = append(order, s.ents[i].k.lo)
	}
	if want := []uint64{3, 0, 2}; len(order) != 3 || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] {
		t.Errorf("LRU order %v, want %v", order, want)
	}
	if len(s.ents) != 3 || s.tracked.Load() != 3 {
		t.Errorf("%d entries, %d tracked, want 3", len(s.ents), s.tracked.Load())
	}
}

func TestShardCount(t *testing.T) {
	for _, m := range []int{1, 2, 3, 15, 16, 17, 100, 1000, DefaultMaxTracked} {
		n := shardCount(m)
		if n < 1 || n&(n-1) != 0 || n > m || n > 256 {
			t.Errorf("shardCount(%d) = %d", m, n)
		}
		if m >= 256 && n < 16 {
			t.Errorf("shardCount(%d) = %d, want at least 16", m, n)
		}
	}
}
