package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/lifecycle"
	"github.com/shardns/shardns/internal/prefetch"
	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/redisopt"
	"github.com/shardns/shardns/resolverd/resolve"
	"github.com/shardns/shardns/resolverd/warm"
)

// startWork adds the queue's workers and the prefetch scheduler to g when
// -queue-redis and -workers ask for them, after the cache and queue
// clients they use. Stopping them ends the claims; the tasks in hand
// finish (each within half a lease) and the scheduler gives its lease up.
// ctx bounds the checks of the Redis servers at start.
func startWork(ctx context.Context, g *lifecycle.Group, w WorkFlags, res *resolve.Resolver, store *cache.Redis, reg prometheus.Registerer, log *slog.Logger) (*warm.Warmer, error) {
	if w.QueueRedis == "" || w.Workers <= 0 {
		return nil, nil
	}
	if store == nil {
		return nil, errors.New("resolverd: -workers need -redis: the cache shards the answers go to")
	}
	rules, err := w.Rules()
	if err != nil {
		return nil, fmt.Errorf("resolverd: %w", err)
	}
	_, queueAuth, err := w.RedisAuth.Load()
	if err != nil {
		return nil, fmt.Errorf("resolverd: %w", err)
	}
	q, err := queue.Open(w.QueueRedis, queue.Config{Name: w.Queue, Lease: w.Lease, MaxAttempts: w.MaxAttempts, Auth: queueAuth})
	if err != nil {
		return nil, fmt.Errorf("resolverd: %w", err)
	}
	g.OnClose("queue Redis", q.Client().Close)
	if c, ok := q.Client().(*redis.Client); ok {
		_ = redisopt.CheckClient(ctx, log, "queue Redis", c, queueAuth)
	}
	wm, err := warm.New(warm.Config{
		Resolver: res, Store: store, Policy: rules.Policy,
		Stale: rules.Stale, Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("resolverd: %w", err)
	}
	host, _ := os.Hostname()
	id := host + ":" + strconv.Itoa(os.Getpid())
	g.Go("queue workers", func(ctx context.Context) {
		q.Work(ctx, queue.Workers{N: w.Workers, Name: id, Registerer: reg, Logger: log}, wm.Handle)
	})
	if w.PrefetchHits > 0 {
		s := prefetch.NewScheduler(prefetch.SchedulerConfig{Queue: q, ID: id, MinHits: w.PrefetchHits, Registerer: reg, Logger: log})
		g.Go("prefetch scheduler", s.Run)
	}
	log.Info("queue workers started", "queue", q.Name(), "queue_redis", w.QueueRedis, "workers", w.Workers)
	return wm, nil
}
