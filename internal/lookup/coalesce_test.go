package lookup

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shardns/shardns/internal/cache"
)

// runnerIDs are the goroutine IDs of the runners of s (other tests'
// chains may have theirs).
func runnerIDs(t *testing.T, s *coalesceStep) []string {
	t.Helper()
	mine := regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("lookup.(*coalesceStep).run(%p,", s)))
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var ids []string
	for _, g := range regexp.MustCompile(`(?s)goroutine (\d+) \[.*?\n\n`).FindAllSubmatch(append(buf, '\n', '\n'), -1) {
		if mine.Match(g[0]) {
			ids = append(ids, string(g[1]))
		}
	}
	return ids
}

// Misses one after another are made by one runner, which keeps its stack
// from one call to the next, and exits once the misses stop.
func TestRunnerServesMissesInTurnAndExitsWhenIdle(t *testing.T) {
	z := &zoneResolver{records: map[string]string{}}
	for i := range 20 {
		n := "r" + strconv.Itoa(i) + ".test."
		z.records[n] = n + " 100 IN A 192.0.2.1"
	}
	h, _, _ := setup(t, z, 0)
	// The runner that made a call may not be back waiting when the next
	// miss comes, which then starts a second one: two at most.
	seen := map[string]bool{}
	for i := range 20 {
		if _, err := h.Lookup(context.Background(), newQuery("r"+strconv.Itoa(i)+".test.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		for _, id := range runnerIDs(t, h.co) {
			seen[id] = true
		}
	}
	if len(seen) == 0 || len(seen) > 2 {
		t.Fatalf("20 misses in turn ran on %d runners, want 1 or 2", len(seen))
	}
	if n := z.calls.Load(); n != 20 {
		t.Fatalf("%d resolver calls for 20 names", n)
	}
	deadline := time.Now().Add(10 * runnerIdle)
	for len(runnerIDs(t, h.co)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a runner still waits %v after the last miss", 10*runnerIdle)
		}
		time.Sleep(runnerIdle / 4)
	}
}

// Every lookup answered by a call it shared counts as coalesced, the
// first caller's too.
func TestCoalescedLookupsAreCounted(t *testing.T) {
	z := &zoneResolver{delay: 200 * time.Millisecond, records: map[string]string{"c.test.": "c.test. 100 IN A 192.0.2.1"}}
	h, _, _ := setup(t, z, 0)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.Lookup(context.Background(), newQuery("c.test.", dns.TypeA)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := z.calls.Load(); n != 1 {
		t.Fatalf("%d resolver calls, want 1", n)
	}
	if got := testutil.ToFloat64(h.metrics.coalesced); got != 10 {
		t.Errorf("coalesced_total %v, want 10", got)
	}
	// A lookup alone is not coalesced.
	if _, err := h.Lookup(context.Background(), newQuery("d.test.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(h.metrics.coalesced); got != 10 {
		t.Errorf("coalesced_total %v after a lone miss, want 10", got)
	}
}

// A miss looks in L1 again only for a key whose call ended lately: any
// other has just read it (Peek), so a second read would find nothing.
func TestCoalesceRereadsL1OnlyAfterAnEndedCall(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	mem := cache.NewMemory(cache.MemoryConfig{MaxEntries: 100, MaxBytes: 1 << 20, Now: clk.Now})
	l := cache.NewLayered(mem, nil)
	below := &countingHandler{res: &Result{Source: SourceResolver}}
	co := newCoalesceStep(below, time.Second, l, clk.Now, newMetrics(nil))
	defer co.close()
	e := answerEntry(t, "b.test. 100 IN A 192.0.2.1", clk.Now())
	q := newQuery("b.test.", dns.TypeA)
	if err := l.Set(context.Background(), q.Key, e); err != nil {
		t.Fatal(err)
	}
	res, err := co.Lookup(context.Background(), q)
	if err != nil || res.Source != SourceResolver || below.calls.Load() != 1 {
		t.Fatalf("a miss no call of its key ended before: %+v, %v, %d calls below; want the call below", res, err, below.calls.Load())
	}
	res, err = co.Lookup(context.Background(), q)
	if err != nil || res.Source != SourceL1 || below.calls.Load() != 1 {
		t.Fatalf("a miss after its key's call ended: %+v, %v, %d calls below; want L1's entry", res, err, below.calls.Load())
	}
}

// A budget that ran out leaves nothing behind for the next lookup's: the
// waiters' timers are reused, and one that fired must not end another
// lookup early.
func TestBudgetTimerReusedAfterItFired(t *testing.T) {
	z := &zoneResolver{delay: 100 * time.Millisecond, records: map[string]string{
		"slow.test.": "slow.test. 100 IN A 192.0.2.1", "next.test.": "next.test. 100 IN A 192.0.2.2"}}
	h, _, _ := setup(t, z, 0)
	_, err := h.LookupPeeked(context.Background(), &Peeked{Query: newQuery("slow.test.", dns.TypeA)}, 10*time.Millisecond)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a lookup past its budget: %v, want ErrTimeout and DeadlineExceeded", err)
	}
	for i := range 5 {
		res, err := h.LookupPeeked(context.Background(), &Peeked{Query: newQuery("next.test.", dns.TypeA)}, 5*time.Second)
		if err != nil {
			t.Fatalf("lookup %d after a budget ran out: %v", i, err)
		}
		if i == 0 && res.Source != SourceResolver {
			t.Fatalf("first lookup of next.test. from %s, want the resolver", res.Source)
		}
	}
}
