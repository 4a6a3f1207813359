package prefetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/queue"
)

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	Queue   *queue.Queue // refresh tasks go here; its Redis holds the counts
	ID      string       // this scheduler's name in the lease (e.g. host:pid)
	MinHits int          // hits that make an entry popular (default 2)
	Every   time.Duration
	// MaxTracked bounds the entries the counts keep: past it, those due
	// last are dropped (their next hits add them again). Default 200,000.
	MaxTracked int64
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// batch bounds the entries one tick looks at.
const batch = 1000

// Scheduler enqueues refreshes of popular entries near expiry. Any number
// may run; only the holder of the lease schedules.
type Scheduler struct {
	cfg  SchedulerConfig
	rdb  redis.UniversalClient
	keys keys

	enqueued, unpopular prometheus.Counter
	leader              prometheus.Gauge
}

// renewScript extends the lease if this scheduler holds it, or takes it if
// nobody does. It returns 1 when the caller holds the lease.
//
// KEYS: lease. ARGV: id, lease (ms).
var renewScript = redis.NewScript(`
local h = redis.call('GET', KEYS[1])
if h == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not h then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// NewScheduler returns a Scheduler; Run runs it.
func NewScheduler(cfg SchedulerConfig) *Scheduler {
	if cfg.MinHits <= 0 {
		cfg.MinHits = 2
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Second
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = 200_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Scheduler{cfg: cfg, rdb: cfg.Queue.Client(), keys: keysFor(cfg.Queue.Name())}
	s.enqueued = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "shardns", Subsystem: "prefetch", Name: "enqueued_total",
		Help: "Refreshes of popular entries put on the work queue."})
	s.unpopular = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "shardns", Subsystem: "prefetch", Name: "unpopular_total",
		Help: "Entries that reached their refresh time with too few hits to be refreshed."})
	s.leader = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "shardns", Subsystem: "prefetch", Name: "scheduler_leader",
		Help: "1 while this process holds the scheduler lease."})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.enqueued, s.unpopular, s.leader)
	}
	return s
}

// Run schedules every cfg.Every while it holds the lease, until ctx ends;
// then it gives the lease up.
func (s *Scheduler) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			s.release(rctx)
			cancel()
			return
		case <-t.C:
		}
		tctx, cancel := context.WithTimeout(ctx, 3*s.cfg.Every)
		lead, err := s.Lead(tctx)
		if err == nil && lead {
			_, err = s.Tick(tctx)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("prefetch: scheduling failed", "err", err)
		}
	}
}

// Lead takes or renews the lease (three ticks long) and reports whether
// this scheduler holds it.
func (s *Scheduler) Lead(ctx context.Context) (bool, error) {
	n, err := renewScript.Run(ctx, s.rdb, []string{s.keys.lease}, s.cfg.ID, (3 * s.cfg.Every).Milliseconds()).Int()
	if err != nil {
		s.leader.Set(0)
		return false, fmt.Errorf("prefetch: lease: %w", err)
	}
	s.leader.Set(float64(n))
	return n == 1, nil
}

func (s *Scheduler) release(ctx context.Context) {
	s.rdb.Eval(ctx, `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
		[]string{s.keys.lease}, s.cfg.ID)
	s.leader.Set(0)
}

// Tick enqueues a refresh for every entry whose refresh time has come and
// which has MinHits hits, forgets the counts of every entry it looked at,
// and reports how many refreshes it enqueued. Callers hold the lease.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	now := s.cfg.Now().UnixMilli()
	due, err := s.rdb.ZRangeByScoreWithScores(ctx, s.keys.due, &redis.ZRangeBy{
		Min: "-inf", Max: fmt.Sprint(now), Count: batch,
	}).Result()
	if err != nil {
		return 0, fmt.Errorf("prefetch: read due entries: %w", err)
	}
	enqueued := 0
	if len(due) > 0 {
		hits := make([]*redis.FloatCmd, len(due))
		members := make([]any, len(due))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, z := range due {
				hits[i] = p.ZScore(ctx, s.keys.hits, z.Member.(string))
				members[i] = z.Member
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return 0, fmt.Errorf("prefetch: read hits: %w", err)
		}
		for i, z := range due {
			if int(hits[i].Val()) < s.cfg.MinHits {
				s.unpopular.Inc()
				continue
			}
			key := z.Member.(string)
			added, err := s.cfg.Queue.EnqueueOnce(ctx, &queue.Task{ID: taskID(key, int64(z.Score)), Kind: queue.KindRefresh, Key: key})
			if err != nil {
				return enqueued, err
			}
			if added {
				enqueued++
				s.enqueued.Inc()
			}
		}
		// The next entry under these keys starts counting from zero.
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.ZRem(ctx, s.keys.due, members...)
			p.ZRem(ctx, s.keys.hits, members...)
			return nil
		})
		if err != nil {
			return enqueued, fmt.Errorf("prefetch: forget scheduled entries: %w", err)
		}
	}
	return enqueued, s.trim(ctx)
}

// trim drops the entries due last when more than MaxTracked are counted.
func (s *Scheduler) trim(ctx context.Context) error {
	n, err := s.rdb.ZCard(ctx, s.keys.due).Result()
	if err != nil || n <= s.cfg.MaxTracked {
		return err
	}
	extra, err := s.rdb.ZRange(ctx, s.keys.due, s.cfg.MaxTracked, -1).Result()
	if err != nil || len(extra) == 0 {
		return err
	}
	members := make([]any, len(extra))
	for i, m := range extra {
		members[i] = m
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, s.keys.due, members...)
		p.ZRem(ctx, s.keys.hits, members...)
		return nil
	})
	return err
}
