package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Handler does one task and returns a short result for the task's hash.
// Its context ends at half the lease, so a run finishes before another
// worker may take the task.
type Handler func(ctx context.Context, t *Task) (string, error)

// Workers are the settings of Work.
type Workers struct {
	N          int                   // goroutines taking tasks (at least 1)
	Name       string                // worker name prefix (default host:pid)
	Registerer prometheus.Registerer // nil: metrics are not registered
	Logger     *slog.Logger
}

// claimWait is how long one BLMOVE blocks; it bounds how long Work takes to
// notice its context ended while the queue is empty.
const claimWait = time.Second

type workerMetrics struct {
	tasks    *prometheus.CounterVec // by result: done, failed, dead, canceled, lost
	reaped   prometheus.Counter
	duration prometheus.Histogram
}

func newWorkerMetrics(reg prometheus.Registerer) *workerMetrics {
	m := &workerMetrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "queue", Name: "tasks_total",
			Help: "Task runs by result: done, failed (requeued), dead, canceled, lost (ended elsewhere after this run's lease ran out).",
		}, []string{"result"}),
		reaped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "queue", Name: "reaped_total",
			Help: "Tasks taken back from workers whose lease ran out.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "shardns", Subsystem: "queue", Name: "task_duration_seconds",
			Help:    "Time one task run took.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
	}
	// Every result is exported from the start, at zero.
	for _, r := range []string{StateDone, "failed", StateDead, StateCanceled, "lost"} {
		m.tasks.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.tasks, m.reaped, m.duration)
	}
	return m
}

// Work runs w.N workers and a reaper on the queue until ctx ends. A task in
// hand when ctx ends is finished first (within half a lease). Redis errors
// are logged and retried after a pause; Work returns when ctx is done.
func (q *Queue) Work(ctx context.Context, w Workers, h Handler) {
	if w.N < 1 {
		w.N = 1
	}
	if w.Name == "" {
		host, _ := os.Hostname()
		w.Name = host + ":" + strconv.Itoa(os.Getpid())
	}
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
	m := newWorkerMetrics(w.Registerer)
	var wg sync.WaitGroup
	for i := range w.N {
		wg.Go(func() { q.workLoop(ctx, w.Name+"/"+strconv.Itoa(i), h, m, w.Logger) })
	}
	wg.Go(func() { q.reapLoop(ctx, m, w.Logger) })
	wg.Wait()
}

func (q *Queue) workLoop(ctx context.Context, name string, h Handler, m *workerMetrics, log *slog.Logger) {
	for ctx.Err() == nil {
		t, err := q.Claim(ctx, name, claimWait)
		switch {
		case errors.Is(err, ErrCanceled):
			q.end(ctx, t, StateCanceled, "job canceled", m, log)
			continue
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("queue: claim failed", "err", err)
				pause(ctx, time.Second)
			}
			continue
		case t == nil:
			continue
		}
		start := time.Now()
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.lease/2)
		result, herr := runHandler(hctx, h, t)
		cancel()
		m.duration.Observe(time.Since(start).Seconds())
		if herr == nil {
			q.end(ctx, t, StateDone, result, m, log)
			continue
		}
		res, err := q.Fail(context.WithoutCancel(ctx), t.ID, herr)
		switch {
		case err != nil:
			log.Warn("queue: recording a failure failed; the reaper will retry the task", "task", t.ID, "err", err)
		case res == FailDead:
			m.tasks.WithLabelValues("dead").Inc()
			log.Info("queue: task dead", "task", t.ID, "name", t.Name, "key", t.Key, "err", herr)
		case res == FailRequeued:
			m.tasks.WithLabelValues("failed").Inc()
		default:
			m.tasks.WithLabelValues("lost").Inc()
		}
	}
}

// runHandler calls h, turning a panic into a failed run.
func runHandler(ctx context.Context, h Handler, t *Task) (result string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("queue: handler panicked: %v", p)
		}
	}()
	return h(ctx, t)
}

func (q *Queue) end(ctx context.Context, t *Task, state, result string, m *workerMetrics, log *slog.Logger) {
	ok, err := q.Finish(context.WithoutCancel(ctx), t.ID, state, result)
	switch {
	case err != nil:
		log.Warn("queue: finishing a task failed; the reaper will retry it", "task", t.ID, "err", err)
	case ok:
		m.tasks.WithLabelValues(state).Inc()
	default:
		m.tasks.WithLabelValues("lost").Inc()
	}
}

func (q *Queue) reapLoop(ctx context.Context, m *workerMetrics, log *slog.Logger) {
	every := max(q.lease/4, 50*time.Millisecond)
	for pause(ctx, every) {
		n, err := q.Reap(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("queue: reap failed", "err", err)
		}
		if n > 0 {
			m.reaped.Add(float64(n))
			log.Info("queue: took back tasks of workers whose lease ran out", "tasks", n)
		}
	}
}

// pause waits d or until ctx ends; it reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
