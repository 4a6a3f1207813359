package prefetch

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// runUntilCancel runs loop under a context it cancels when the returned
// stop is called; stop waits for loop to return, for at most 5 s.
func runUntilCancel(t *testing.T, loop func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); loop(ctx) }()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the loop did not return within 5s of its cancel")
		}
	}
}

// A Counter's Run sends what it counted once more when its context ends,
// then returns, leaving no goroutine behind.
func TestCounterRunStops(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	c := NewCounter(CounterConfig{Client: rdb, Queue: "warm", Every: time.Hour})
	stop := runUntilCancel(t, c.Run)
	e := &cache.Entry{StoredAt: time.Now(), TTL: 300}
	c.Hit("dns:{a.example.}:A:IN", e)
	c.Hit("dns:{a.example.}:A:IN", e)
	stop()
	if n, err := rdb.ZScore(t.Context(), keysFor("warm").hits, "dns:{a.example.}:A:IN").Result(); err != nil || n != 2 {
		t.Errorf("hits in Redis after the stop: %v, %v; want 2 from the last send", n, err)
	}
}

// A Counter's sends are bounded: with Redis gone, Run still returns soon
// after its cancel.
func TestCounterRunStopsWithoutRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	c := NewCounter(CounterConfig{Client: rdb, Queue: "warm", Every: 20 * time.Millisecond})
	stop := runUntilCancel(t, c.Run)
	srv.Kill()
	c.Hit("dns:{a.example.}:A:IN", &cache.Entry{StoredAt: time.Now(), TTL: 300})
	time.Sleep(50 * time.Millisecond) // a tick's send fails
	start := time.Now()
	stop()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Run took %v to return after its cancel", took)
	}
}

// A Scheduler's Run takes the lease, and when its context ends gives it up
// and returns, leaving no goroutine behind.
func TestSchedulerRunStops(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	q, err := queue.New(queue.Config{Client: rdb})
	if err != nil {
		t.Fatal(err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	s := NewScheduler(SchedulerConfig{Queue: q, ID: "one", Every: 20 * time.Millisecond})
	stop := runUntilCancel(t, s.Run)
	lease := keysFor(q.Name()).lease
	deadline := time.Now().Add(5 * time.Second)
	for id, _ := rdb.Get(t.Context(), lease).Result(); id != "one"; id, _ = rdb.Get(t.Context(), lease).Result() {
		if time.Now().After(deadline) {
			t.Fatal("the scheduler never took the lease")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if n, err := rdb.Exists(t.Context(), lease).Result(); err != nil || n != 0 {
		t.Errorf("lease after the stop: %d, %v; want it given up", n, err)
	}
	if counterValue(s.enqueued) != 0 {
		t.Error("enqueued with nothing due")
	}
}
