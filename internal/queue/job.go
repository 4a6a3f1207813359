package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Job states.
const (
	JobRunning  = "running"
	JobFinished = "finished"
	JobCanceled = "canceled"
)

// Item is one name to warm: a domain name and a type (mnemonic or TYPEn).
type Item struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Job is a batch of warm tasks and its progress.
type Job struct {
	ID       string    `json:"id"`
	State    string    `json:"state"` // running, finished or canceled
	Source   string    `json:"source,omitempty"`
	Total    int64     `json:"total"`
	Done     int64     `json:"done"`     // tasks completed
	Failed   int64     `json:"failed"`   // failed runs, retried or not
	Dead     int64     `json:"dead"`     // tasks that ran out of attempts
	Canceled int64     `json:"canceled"` // tasks ended unrun by a cancel
	Pending  int64     `json:"pending"`  // tasks not yet ended
	Created  time.Time `json:"created"`
	Finished time.Time `json:"finished,omitzero"`
	// Rate is tasks ended per second since the job was created (until it
	// finished); ETA the time left at that rate, while it runs.
	Rate float64 `json:"rate"`
	ETA  float64 `json:"eta_seconds"`
}

// submitBatch is how many tasks one MULTI/EXEC enqueues.
const submitBatch = 500

// MaxJobItems bounds one job.
const MaxJobItems = 1_000_000

// Submit creates a job of one warm task per item and queues them in order.
// Items must already be validated.
func (q *Queue) Submit(ctx context.Context, items []Item, source string) (*Job, error) {
	if len(items) == 0 {
		return nil, errors.New("queue: submit: no items")
	}
	if len(items) > MaxJobItems {
		return nil, fmt.Errorf("queue: submit: %d items, at most %d", len(items), MaxJobItems)
	}
	id := newID()
	now := q.now()
	jk := q.JobKey(id)
	_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, jk, "id", id, "state", JobRunning, "source", source, "total", 0, "done", 0,
			"failed", 0, "dead", 0, "canceled", 0, "created", now.UnixMilli())
		p.ZAdd(ctx, q.Key("jobs"), redis.Z{Score: float64(now.UnixMilli()), Member: id})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: submit: %w", err)
	}
	for start := 0; start < len(items); start += submitBatch {
		batch := items[start:min(start+submitBatch, len(items))]
		_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			ids := make([]any, len(batch))
			for i, it := range batch {
				t := Task{ID: id + "-" + strconv.Itoa(start+i), Job: id, Kind: KindWarm, Name: it.Name, Type: it.Type}
				p.HSet(ctx, q.TaskKey(t.ID), t.fields(now)...)
				ids[i] = t.ID
			}
			p.LPush(ctx, q.Key("pending"), ids...)
			p.HIncrBy(ctx, jk, "total", int64(len(batch)))
			return nil
		})
		if err != nil {
			// What was queued stays queued and counted; the job is
			// sealed so it still finishes.
			q.seal(context.WithoutCancel(ctx), id)
			return nil, fmt.Errorf("queue: submit %s: queued %d of %d: %w", id, start, len(items), err)
		}
	}
	if err := q.seal(ctx, id); err != nil {
		return nil, err
	}
	return q.Job(ctx, id)
}

func (q *Queue) seal(ctx context.Context, id string) error {
	if err := sealScript.Run(ctx, q.rdb, []string{q.JobKey(id)}, q.now().UnixMilli(), int64(q.keep/time.Second)).Err(); err != nil {
		return fmt.Errorf("queue: seal %s: %w", id, err)
	}
	return nil
}

// Job reads a job and works out its progress.
func (q *Queue) Job(ctx context.Context, id string) (*Job, error) {
	m, err := q.rdb.HGetAll(ctx, q.JobKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: job %s: %w", id, err)
	}
	if len(m) == 0 {
		return nil, ErrNotFound
	}
	return jobFrom(m, q.now()), nil
}

func jobFrom(m map[string]string, now time.Time) *Job {
	n := func(k string) int64 { v, _ := strconv.ParseInt(m[k], 10, 64); return v }
	j := &Job{
		ID: m["id"], State: m["state"], Source: m["source"],
		Total: n("total"), Done: n("done"), Failed: n("failed"), Dead: n("dead"), Canceled: n("canceled"),
		Created: msTime(m["created"]), Finished: msTime(m["finished"]),
	}
	ended := j.Done + j.Dead + j.Canceled
	j.Pending = max(j.Total-ended, 0)
	end := now
	if !j.Finished.IsZero() {
		end = j.Finished
	}
	if el := end.Sub(j.Created).Seconds(); el > 0 {
		j.Rate = float64(ended) / el
	}
	if j.State == JobRunning && j.Rate > 0 {
		j.ETA = float64(j.Pending) / j.Rate
	}
	return j
}

// Jobs lists up to limit jobs, newest first. Jobs whose hash has expired
// are dropped from the list as they are met.
func (q *Queue) Jobs(ctx context.Context, limit int) ([]*Job, error) {
	ids, err := q.rdb.ZRevRange(ctx, q.Key("jobs"), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: jobs: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, q.JobKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: jobs: %w", err)
	}
	now := q.now()
	out := make([]*Job, 0, len(ids))
	var gone []any
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			gone = append(gone, ids[i])
			continue
		}
		out = append(out, jobFrom(c.Val(), now))
	}
	if len(gone) > 0 {
		q.rdb.ZRem(ctx, q.Key("jobs"), gone...)
	}
	return out, nil
}

// Cancel stops a running job: its tasks still pending end as canceled when
// a worker reaches them, unrun. A job that has ended is left as it is.
func (q *Queue) Cancel(ctx context.Context, id string) (*Job, error) {
	n, err := cancelScript.Run(ctx, q.rdb, []string{q.JobKey(id)}, q.now().UnixMilli()).Int()
	if err != nil {
		return nil, fmt.Errorf("queue: cancel %s: %w", id, err)
	}
	if n == 0 {
		return nil, ErrNotFound
	}
	return q.Job(ctx, id)
}

// newID is 12 random hex digits.
func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
