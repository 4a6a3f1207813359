package fleetstats

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// After a shard refuses PoolSize dials in a row, go-redis probes it from
	// a goroutine that sleeps a second between dials: it ends by itself, up
	// to 1s after Close.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

// newRing returns a go-redis Ring over addrs, each shard named by its
// address, closed when the test ends.
func newRing(t *testing.T, addrs []string) *redis.Ring {
	t.Helper()
	shards := map[string]string{}
	for _, a := range addrs {
		shards[a] = a
	}
	r := redis.NewRing(&redis.RingOptions{
		Addrs: shards,
		NewClient: func(opt *redis.Options) *redis.Client {
			opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
			return redis.NewClient(opt)
		},
		MaxRetries:            -1,
		DialTimeout:           time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
	})
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// newClient returns a client of one server that keeps to its callers'
// deadlines, as the cache tier's clients do, closed when the test ends.
func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                     addr,
		MaxRetries:               -1,
		DialTimeout:              time.Second,
		ReadTimeout:              time.Second,
		WriteTimeout:             time.Second,
		ContextTimeoutEnabled:    true,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// chainMetrics are collectors named and labelled as the lookup chain's
// (internal/lookup/metrics.go), on their own registry.
type chainMetrics struct {
	reg      *prometheus.Registry
	answers  *prometheus.CounterVec
	failures *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newChainMetrics() *chainMetrics {
	m := &chainMetrics{
		reg: prometheus.NewRegistry(),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "lookup", Name: "answers_total", Help: "answers",
		}, []string{"source"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "lookup", Name: "failures_total", Help: "failures",
		}, []string{"reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "shardns", Subsystem: "lookup", Name: "duration_seconds", Help: "duration",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2},
		}, []string{"source"}),
	}
	m.reg.MustRegister(m.answers, m.failures, m.duration)
	return m
}

// add adds to the answer counters by source and to the timeout failures.
func (m *chainMetrics) add(l1, rds, resolver, stale, failures float64) {
	m.answers.WithLabelValues("l1").Add(l1)
	m.answers.WithLabelValues("redis").Add(rds)
	m.answers.WithLabelValues("resolver").Add(resolver)
	m.answers.WithLabelValues("stale").Add(stale)
	m.failures.WithLabelValues("timeout").Add(failures)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// waitFor polls cond every 10ms until it holds, failing the test after
// limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readFleet is ReadFleet under a 5s deadline, failing the test on error.
func readFleet(t *testing.T, c redis.Cmdable, now time.Time) []Frontend {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	fs, err := ReadFleet(ctx, c, now)
	if err != nil {
		t.Fatalf("ReadFleet: %v", err)
	}
	return fs
}

// byID returns the frontend with id from fs, or nil.
func byID(fs []Frontend, id string) *Frontend {
	for i := range fs {
		if fs[i].ID == id {
			return &fs[i]
		}
	}
	return nil
}
