package prefetch

import (
	"testing"
	"time"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// Hits counted by two frontends add up; the scheduler that holds the lease
// enqueues each popular entry once, skips unpopular ones, and a second
// scheduler neither leads nor enqueues a duplicate.
func TestCountersAndScheduler(t *testing.T) {
	srv := redistest.Start(t)
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	q, err := queue.New(queue.Config{Client: srv.Client(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	popular := &cache.Entry{StoredAt: now, TTL: 100}
	lonely := &cache.Entry{StoredAt: now, TTL: 100}
	later := &cache.Entry{StoredAt: now, TTL: 1000}
	a := NewCounter(CounterConfig{Client: srv.Client(), Queue: "warm", Now: clock})
	b := NewCounter(CounterConfig{Client: srv.Client(), Queue: "warm", Now: clock})
	a.Hit("dns:{pop.example.}:A:IN", popular)
	b.Hit("dns:{pop.example.}:A:IN", popular)
	a.Hit("dns:{lonely.example.}:A:IN", lonely)
	b.Hit("dns:{later.example.}:A:IN", later)
	b.Hit("dns:{later.example.}:A:IN", later)
	a.Send(t.Context())
	b.Send(t.Context())

	s1 := NewScheduler(SchedulerConfig{Queue: q, ID: "one", Now: clock})
	s2 := NewScheduler(SchedulerConfig{Queue: q, ID: "two", Now: clock})
	if lead, err := s1.Lead(t.Context()); !lead || err != nil {
		t.Fatalf("first scheduler does not lead: %v", err)
	}
	if lead, _ := s2.Lead(t.Context()); lead {
		t.Fatal("two schedulers lead")
	}
	if n, err := s1.Tick(t.Context()); n != 0 || err != nil {
		t.Fatalf("tick before any entry is due enqueued %d (%v)", n, err)
	}
	now = now.Add(91 * time.Second) // pop and lonely are due; later is not
	if n, err := s1.Tick(t.Context()); n != 1 || err != nil {
		t.Fatalf("tick enqueued %d (%v), want 1", n, err)
	}
	task, err := q.Claim(t.Context(), "w", time.Second)
	if err != nil || task == nil || task.Kind != queue.KindRefresh || task.Key != "dns:{pop.example.}:A:IN" {
		t.Fatalf("claimed %+v %v", task, err)
	}
	// A frontend still hitting the old copy reports it again: the same
	// refresh is not queued twice.
	a.Hit("dns:{pop.example.}:A:IN", popular)
	a.Hit("dns:{pop.example.}:A:IN", popular)
	a.Send(t.Context())
	if n, _ := s1.Tick(t.Context()); n != 0 {
		t.Fatalf("the same refresh was enqueued again")
	}
	c, _ := q.Counts(t.Context())
	if c.Pending != 0 || c.Processing != 1 {
		t.Fatalf("queue %+v", c)
	}
	// The lease passes to the other scheduler when the first one stops.
	s1.release(t.Context())
	if lead, _ := s2.Lead(t.Context()); !lead {
		t.Fatal("second scheduler cannot take a released lease")
	}
}

// A miss on an entry that was popular here is a hot miss.
func TestHotMiss(t *testing.T) {
	srv := redistest.Start(t)
	c := NewCounter(CounterConfig{Client: srv.Client(), Queue: "warm"})
	e := &cache.Entry{StoredAt: time.Now(), TTL: 60}
	c.Miss("dns:{a.}:A:IN")
	c.Hit("dns:{a.}:A:IN", e)
	c.Miss("dns:{a.}:A:IN")
	if got := counterValue(c.hotMissed); got != 0 {
		t.Fatalf("hot misses after one hit: %v", got)
	}
	c.Hit("dns:{a.}:A:IN", e)
	c.Hit("dns:{a.}:A:IN", e)
	c.Miss("dns:{a.}:A:IN")
	c.Miss("dns:{a.}:A:IN")
	if got := counterValue(c.hotMissed); got != 1 {
		t.Fatalf("hot misses: %v, want 1", got)
	}
}
