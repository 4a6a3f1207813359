package cachelab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/cache"
)

// replayTimeout is the per-call budget of the cache during a replay:
// longer than the query path's 50 ms so that a busy two-core machine
// measures evictions, not timeouts (timeouts are counted apart).
const replayTimeout = 500 * time.Millisecond

// newRing returns the query path's Redis tier over addrs.
func newRing(addrs []string, poolSize int) (*cache.Redis, error) {
	return cache.NewRing(cache.RedisConfig{Addrs: addrs, Timeout: replayTimeout, PoolSize: poolSize})
}

// entryFor returns it as the query path stores it at now: fresh for its
// TTL, kept by Redis for TTL plus the stale window.
func entryFor(it *item, now time.Time) *cache.Entry {
	e := &cache.Entry{StoredAt: now, TTL: it.TTL, Offsets: it.Offsets, Msg: it.Msg}
	e.StaleUntil = e.Expires().Add(staleWindow)
	return e
}

// replayResult counts one replay's measured part.
type replayResult struct {
	Requests int             // measured requests
	Hits     int             // of which answered from the cache
	Errors   int             // failed Gets and Sets (each also a miss)
	Lat      []time.Duration // Get latencies, sorted, when asked for
	Elapsed  time.Duration   // wall time of the measured part
	Cut      bool            // stopped by the time limit before the trace ended
	FirstErr error           // the first failed call, if any
}

// HitRatio is Hits over Requests.
func (r replayResult) HitRatio() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Hits) / float64(r.Requests)
}

// warmFactor bounds the warm-up at this many times the measured part's
// limit: a warm-up cut short would leave the cache colder than in the
// other runs, so it is an error, not a shorter measurement.
const warmFactor = 3

// replay plays trace against r as the query path would: Get, and on a
// miss Set the answer. The first warm requests fill the cache and are not
// counted; the rest are measured until the trace ends or limit passes.
// workers requests are in flight at a time.
func replay(ctx context.Context, r *cache.Redis, items []item, trace []int32, warm, workers int, limit time.Duration, latency bool) (replayResult, error) {
	warm = min(warm, len(trace))
	if warm > 0 {
		w, err := play(ctx, r, items, trace[:warm], workers, warmFactor*limit, false)
		if err != nil {
			return w, err
		}
		if w.Cut {
			return w, fmt.Errorf("cachelab: replay: warm-up of %d requests not done within %v", warm, warmFactor*limit)
		}
	}
	res, err := play(ctx, r, items, trace[warm:], workers, limit, latency)
	if err == nil && res.Requests == 0 {
		err = fmt.Errorf("cachelab: replay: nothing measured within %v", limit)
	}
	return res, err
}

// play runs one part of a replay and counts every request of it.
func play(parent context.Context, r *cache.Redis, items []item, trace []int32, workers int, limit time.Duration, latency bool) (replayResult, error) {
	ctx, cancel := context.WithTimeout(parent, limit)
	defer cancel()
	var (
		next     atomic.Int64
		hits     atomic.Int64
		reqs     atomic.Int64
		errs     atomic.Int64
		mu       sync.Mutex
		firstErr error
		lats     []time.Duration
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range max(workers, 1) {
		wg.Go(func() {
			var mine []time.Duration
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(trace) {
					break
				}
				it := &items[trace[i]]
				t0 := time.Now()
				_, err := r.Get(ctx, it.Key)
				took := time.Since(t0)
				if ctx.Err() != nil {
					break // a call cut by the limit is not a measurement
				}
				hit := err == nil
				if err != nil && !errors.Is(err, cache.ErrMiss) {
					errs.Add(1)
					noteErr(&mu, &firstErr, err)
				}
				if !hit {
					if err := r.Set(ctx, it.Key, entryFor(it, time.Now())); err != nil && ctx.Err() == nil {
						errs.Add(1)
						noteErr(&mu, &firstErr, err)
					}
				}
				reqs.Add(1)
				if hit {
					hits.Add(1)
				}
				if latency {
					mine = append(mine, took)
				}
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res := replayResult{
		Requests: int(reqs.Load()),
		Hits:     int(hits.Load()),
		Errors:   int(errs.Load()),
		Elapsed:  time.Since(start),
		Cut:      ctx.Err() != nil, // the limit (or parent) ended it, not the trace
		FirstErr: firstErr,
	}
	slices.Sort(lats)
	res.Lat = lats
	if err := parent.Err(); err != nil {
		return res, fmt.Errorf("cachelab: replay: %w", err)
	}
	return res, nil
}

func noteErr(mu *sync.Mutex, first *error, err error) {
	mu.Lock()
	if *first == nil {
		*first = err
	}
	mu.Unlock()
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(sorted)-1))
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// loadAll writes every item through r's Ring in pipelines, encoded and
// expiring as Redis.Set writes them, and returns how many were written.
func loadAll(ctx context.Context, r *cache.Redis, items []item) (int, error) {
	const batch = 512
	now := time.Now()
	written := 0
	for start := 0; start < len(items); start += batch {
		end := min(start+batch, len(items))
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := r.Client().Pipelined(cctx, func(p redis.Pipeliner) error {
			for i := start; i < end; i++ {
				e := entryFor(&items[i], now)
				p.Set(cctx, items[i].Key, e.Encode(), e.StaleUntil.Sub(now).Truncate(time.Millisecond))
			}
			return nil
		})
		cancel()
		if err != nil {
			return written, err
		}
		written = end
	}
	return written, nil
}
