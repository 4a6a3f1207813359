package cache

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

func TestLayeredNil(t *testing.T) {
	ctx := context.Background()
	var nilMem *Memory
	for name, l := range map[string]*Layered{
		"both nil":  NewLayered(nil, nil),
		"typed nil": NewLayered(nilMem, (*Redis)(nil)),
	} {
		e := testEntry(time.Now(), time.Minute, time.Hour, 20)
		if err := l.Set(ctx, "k", e); err != nil {
			t.Errorf("%s: Set: %v", name, err)
		}
		if got, src, err := l.Get(ctx, "k"); err != ErrMiss || got != nil || src != "" {
			t.Errorf("%s: Get = %v, %q, %v; want ErrMiss", name, got, src, err)
		}
		if err := l.Delete(ctx, "k"); err != nil {
			t.Errorf("%s: Delete: %v", name, err)
		}
	}
}

func TestLayeredL1Only(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	l := NewLayered(NewMemory(MemoryConfig{Now: clk.Now}), nil)
	e := testEntry(clk.Now(), time.Minute, time.Hour, 20)
	if _, _, err := l.Get(ctx, "k"); err != ErrMiss {
		t.Fatalf("Get: %v, want ErrMiss", err)
	}
	if err := l.Set(ctx, "k", e); err != nil {
		t.Fatal(err)
	}
	if got, src, err := l.Get(ctx, "k"); err != nil || got != e || src != SourceL1 {
		t.Errorf("Get = %v, %q, %v; want the entry from l1", got, src, err)
	}
	if err := l.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Get(ctx, "k"); err != ErrMiss {
		t.Errorf("after Delete: %v, want ErrMiss", err)
	}
}

func TestLayered(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	l2 := newTestRing(t, []*redistest.Server{srv}, slowTimeout)
	clk := newFakeClock()
	clk.t = time.Now()
	l1 := NewMemory(MemoryConfig{MaxAge: 5 * time.Second, Now: clk.Now})
	l := NewLayered(l1, l2)
	k := key("www.example.com.", "AAAA")
	e := keyed(k, testEntry(clk.Now(), time.Hour, 2*time.Hour, 60))

	// Set writes both tiers.
	if err := l.Set(ctx, k, e); err != nil {
		t.Fatal(err)
	}
	mustGet(t, l1, k)
	mustGet(t, l2, k)
	if got, src, err := l.Get(ctx, k); err != nil || got != e || src != SourceL1 {
		t.Errorf("Get = %v, %q, %v; want l1", got, src, err)
	}

	// An L2-only entry is served from redis and copied into L1.
	k2 := key("only.example.com.", "A")
	mustSet(t, l2, k2, keyed(k2, e))
	got, src, err := l.Get(ctx, k2)
	if err != nil || src != SourceRedis || sameEntry(keyed(k2, e), got) != "" {
		t.Fatalf("Get of an L2-only key = %q, %v; want redis", src, err)
	}
	if l1e := mustGet(t, l1, k2); l1e != got {
		t.Error("L1 does not hold the entry L2 answered")
	}
	if _, src, _ := l.Get(ctx, k2); src != SourceL1 {
		t.Errorf("second Get from %q, want l1", src)
	}
	// L1's MaxAge caps the copy: after it, L2 answers again.
	clk.Advance(5 * time.Second)
	if _, src, err := l.Get(ctx, k2); err != nil || src != SourceRedis {
		t.Errorf("Get after L1's MaxAge = %q, %v; want redis", src, err)
	}

	// Delete clears both.
	if err := l.Delete(ctx, k, k2); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, l1, k)
	mustMiss(t, l2, k)
	mustMiss(t, l1, k2)
	if _, _, err := l.Get(ctx, k); err != ErrMiss {
		t.Errorf("Get after Delete: %v, want ErrMiss", err)
	}

	// Corrupt bytes in L2 are an error, not a miss, and do not reach L1.
	if err := srv.Client().Set(ctx, k, "junk", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Get(ctx, k); !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrMiss) {
		t.Errorf("Get of corrupt L2 bytes: %v, want ErrCorrupt", err)
	}
	mustMiss(t, l1, k)
}

func TestLayeredL2Down(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	l2 := newTestRing(t, []*redistest.Server{srv}, faultTimeout)
	clk := newFakeClock()
	clk.t = time.Now()
	l1 := NewMemory(MemoryConfig{Now: clk.Now})
	l := NewLayered(l1, l2)
	e := testEntry(clk.Now(), time.Hour, 2*time.Hour, 60)
	hot, cold := key("hot.example.", "A"), key("cold.example.", "A")
	if err := l.Set(ctx, hot, e); err != nil {
		t.Fatal(err)
	}
	mustSet(t, l2, cold, keyed(cold, e))

	srv.Pause()
	defer srv.Resume()
	// L1 still answers.
	if got, src, err := l.Get(ctx, hot); err != nil || got != e || src != SourceL1 {
		t.Errorf("L1 hit with L2 down = %q, %v", src, err)
	}
	// An L1 miss with L2 failing is an error that is not a miss.
	start := time.Now()
	_, _, err := l.Get(ctx, cold)
	if d := time.Since(start); d > hangBound {
		t.Errorf("Get with L2 frozen took %v", d)
	}
	if err == nil || errors.Is(err, ErrMiss) {
		t.Errorf("Get with L2 frozen: %v, want an error other than ErrMiss", err)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "cache: l2: ") {
		t.Errorf("error not marked as L2's: %v", err)
	}
	// Set writes L1 and reports L2's failure.
	k := key("new.example.", "A")
	if err := l.Set(ctx, k, keyed(k, e)); err == nil {
		t.Error("Set with L2 frozen reported no error")
	}
	mustGet(t, l1, k)
	// Delete clears L1 even though L2 fails.
	if err := l.Delete(ctx, hot); err == nil {
		t.Error("Delete with L2 frozen reported no error")
	}
	mustMiss(t, l1, hot)
}
