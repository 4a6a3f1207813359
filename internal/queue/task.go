package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Task kinds.
const (
	KindWarm    = "warm"    // resolve Name/Type and store the answer (from a job)
	KindRefresh = "refresh" // re-resolve the cache entry under Key before it expires
)

// Task states, as the task hash's "state" field holds them.
const (
	StatePending    = "pending"
	StateProcessing = "processing"
	StateDone       = "done"
	StateCanceled   = "canceled"
	StateDead       = "dead"
)

// Task is one unit of work, as its hash q:{<q>}:task:<id> holds it.
type Task struct {
	ID       string
	Job      string // "" for tasks of no job (refreshes)
	Kind     string // KindWarm or KindRefresh
	Name     string // the domain name (KindWarm)
	Type     string // the type, a mnemonic or TYPEn (KindWarm)
	Key      string // the cache key (KindRefresh)
	State    string
	Attempts int    // failed runs so far
	Runs     int    // times a worker took it
	Error    string // the last failure
	Worker   string // the worker that took it last
	Result   string // what the handler returned
	Created  time.Time
	Finished time.Time
}

func (t *Task) fields(now time.Time) []any {
	return []any{
		"id", t.ID, "job", t.Job, "kind", t.Kind, "name", t.Name, "type", t.Type, "key", t.Key,
		"state", StatePending, "attempts", 0, "runs", 0, "created", now.UnixMilli(),
	}
}

func taskFrom(m map[string]string) *Task {
	t := &Task{
		ID: m["id"], Job: m["job"], Kind: m["kind"], Name: m["name"], Type: m["type"], Key: m["key"],
		State: m["state"], Error: m["error"], Worker: m["worker"], Result: m["result"],
	}
	t.Attempts, _ = strconv.Atoi(m["attempts"])
	t.Runs, _ = strconv.Atoi(m["runs"])
	t.Created = msTime(m["created"])
	t.Finished = msTime(m["finished"])
	return t
}

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// ErrCanceled is returned by Claim with a task whose job was canceled: the
// worker ends it with Finish(StateCanceled) without doing it.
var ErrCanceled = errors.New("queue: job canceled")

// Claim waits up to wait for a pending task, moves it to processing and
// takes a lease on it for worker. It returns (nil, nil) when none came.
func (q *Queue) Claim(ctx context.Context, worker string, wait time.Duration) (*Task, error) {
	id, err := q.rdb.BLMove(ctx, q.Key("pending"), q.Key("processing"), "RIGHT", "LEFT", wait).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: claim: %w", err)
	}
	// The task is in processing now. If this process dies before the lease
	// is written, the reaper finds the task there without a lease, gives it
	// one, and returns it to pending when that runs out.
	deadline := q.now().Add(q.lease).UnixMilli()
	res, err := leaseScript.Run(context.WithoutCancel(ctx), q.rdb, []string{q.TaskKey(id), q.Key("leases")},
		q.prefix, id, worker, deadline).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("queue: lease %s: %w", id, err)
	}
	if res[0] == "gone" {
		return nil, nil
	}
	m := make(map[string]string, len(res)/2)
	for i := 1; i+1 < len(res); i += 2 {
		m[res[i]] = res[i+1]
	}
	t := taskFrom(m)
	if res[0] == "canceled" {
		return t, ErrCanceled
	}
	return t, nil
}

// Finish ends a claimed task as StateDone or StateCanceled with result. It
// reports false when the task had already ended: its lease ran out, and
// another run finished it or it went to dead.
func (q *Queue) Finish(ctx context.Context, id, state, result string) (bool, error) {
	if state != StateDone && state != StateCanceled {
		return false, fmt.Errorf("queue: finish %s: state %q", id, state)
	}
	n, err := finishScript.Run(ctx, q.rdb,
		[]string{q.Key("processing"), q.Key("pending"), q.Key("completed"), q.Key("leases"), q.TaskKey(id)},
		q.prefix, id, state, result, q.now().UnixMilli(), int64(q.keep/time.Second), maxCompleted).Int()
	if err != nil {
		return false, fmt.Errorf("queue: finish %s: %w", id, err)
	}
	return n == 1, nil
}

// FailResult says what Fail did.
type FailResult int

// What Fail did with the task.
const (
	FailIgnored  FailResult = iota // the task was no longer in processing
	FailRequeued                   // back to pending for another attempt
	FailDead                       // out of attempts: moved to dead
)

// Fail ends one run of a claimed task as failed with cause: the task goes
// back to pending, or to dead when it has failed MaxAttempts times.
func (q *Queue) Fail(ctx context.Context, id string, cause error) (FailResult, error) {
	return q.fail(ctx, id, cause.Error(), false)
}

func (q *Queue) fail(ctx context.Context, id, cause string, onlyExpired bool) (FailResult, error) {
	expired := "0"
	if onlyExpired {
		expired = "1"
	}
	n, err := failScript.Run(ctx, q.rdb,
		[]string{q.Key("processing"), q.Key("pending"), q.Key("dead"), q.Key("leases"), q.TaskKey(id)},
		q.prefix, id, cause, q.now().UnixMilli(), q.maxAttempts, int64(q.keep/time.Second), expired).Int()
	if err != nil {
		return FailIgnored, fmt.Errorf("queue: fail %s: %w", id, err)
	}
	return FailResult(n), nil
}

// Reap returns to pending (or dead) every task whose lease has run out,
// and gives a lease to tasks found in processing without one. It reports
// how many tasks it took back. Any number of reapers may run at once.
func (q *Queue) Reap(ctx context.Context) (int, error) {
	ids, err := orphanScript.Run(ctx, q.rdb, []string{q.Key("processing"), q.Key("leases")},
		q.now().UnixMilli(), q.lease.Milliseconds()).StringSlice()
	if err != nil {
		return 0, fmt.Errorf("queue: reap: %w", err)
	}
	n := 0
	for _, id := range ids {
		worker, _ := q.rdb.HGet(ctx, q.TaskKey(id), "worker").Result()
		res, err := q.fail(ctx, id, "lease expired: worker "+worker+" stopped answering", true)
		if err != nil {
			return n, err
		}
		if res != FailIgnored {
			n++
		}
	}
	return n, nil
}

// Task reads a task by ID; redis.Nil-style absence is ErrNotFound.
func (q *Queue) Task(ctx context.Context, id string) (*Task, error) {
	m, err := q.rdb.HGetAll(ctx, q.TaskKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: task %s: %w", id, err)
	}
	if len(m) == 0 {
		return nil, ErrNotFound
	}
	return taskFrom(m), nil
}

// ErrNotFound is returned for a task or job that does not exist (or has
// expired).
var ErrNotFound = errors.New("queue: not found")

// EnqueueOnce adds a task with this ID unless one exists, pending,
// running, or finished within Keep. It reports whether it was added.
func (q *Queue) EnqueueOnce(ctx context.Context, t *Task) (bool, error) {
	if t.ID == "" {
		return false, errors.New("queue: enqueue: task without ID")
	}
	args := append([]any{t.ID}, t.fields(q.now())...)
	n, err := enqueueOnceScript.Run(ctx, q.rdb, []string{q.TaskKey(t.ID), q.Key("pending")}, args...).Int()
	if err != nil {
		return false, fmt.Errorf("queue: enqueue %s: %w", t.ID, err)
	}
	return n == 1, nil
}

// Counts are the lengths of the queue's lists.
type Counts struct {
	Pending, Processing, Completed, Dead int64
}

// Counts reads the lengths of the lists in one round trip.
func (q *Queue) Counts(ctx context.Context) (Counts, error) {
	var c [4]*redis.IntCmd
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range []string{"pending", "processing", "completed", "dead"} {
			c[i] = p.LLen(ctx, q.Key(k))
		}
		return nil
	})
	if err != nil {
		return Counts{}, fmt.Errorf("queue: counts: %w", err)
	}
	return Counts{c[0].Val(), c[1].Val(), c[2].Val(), c[3].Val()}, nil
}
