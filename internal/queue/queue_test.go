package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

func newQueue(t *testing.T, lease time.Duration) (*Queue, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	c := srv.Client()
	q, err := New(Config{Client: c, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	return q, c
}

func items(n int, prefix string) []Item {
	out := make([]Item, n)
	for i := range out {
		out[i] = Item{Name: fmt.Sprintf("%s%d.example.", prefix, i), Type: "A"}
	}
	return out
}

// work runs Work with n workers until the job ends or 20 s pass.
func work(t *testing.T, q *Queue, jobID string, n int, h Handler) *Job {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { q.Work(ctx, Workers{N: n, Name: "test"}, h) })
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		j, err := q.Job(t.Context(), jobID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != JobRunning {
			return j
		}
		time.Sleep(20 * time.Millisecond)
	}
	j, _ := q.Job(t.Context(), jobID)
	t.Fatalf("job did not end within 20s: %+v", j)
	return nil
}

func wantCounts(t *testing.T, q *Queue, want Counts) {
	t.Helper()
	got, err := q.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("lists: %+v, want %+v", got, want)
	}
}

func TestJobRunsEveryTaskOnce(t *testing.T) {
	q, c := newQueue(t, 5*time.Second)
	job, err := q.Submit(t.Context(), items(1200, "n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if job.Total != 1200 || job.State != JobRunning || job.Pending != 1200 {
		t.Fatalf("submitted job: %+v", job)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	j := work(t, q, job.ID, 4, func(ctx context.Context, task *Task) (string, error) {
		mu.Lock()
		seen[task.Name]++
		mu.Unlock()
		return "ok " + task.Type, nil
	})
	if j.State != JobFinished || j.Done != 1200 || j.Failed != 0 || j.Dead != 0 || j.Pending != 0 || j.Finished.IsZero() {
		t.Fatalf("finished job: %+v", j)
	}
	if len(seen) != 1200 {
		t.Fatalf("%d names run, want 1200", len(seen))
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s run %d times", name, n)
		}
	}
	wantCounts(t, q, Counts{Completed: 1200})
	task, err := q.Task(t.Context(), job.ID+"-7")
	if err != nil {
		t.Fatal(err)
	}
	if task.State != StateDone || task.Result != "ok A" || task.Runs != 1 || task.Name != "n7.example." || task.Job != job.ID {
		t.Fatalf("task: %+v", task)
	}
	if ttl := c.TTL(t.Context(), q.TaskKey(task.ID)).Val(); ttl <= 0 || ttl > DefaultKeep {
		t.Errorf("finished task TTL %v, want within %v", ttl, DefaultKeep)
	}
	if ttl := c.TTL(t.Context(), q.JobKey(job.ID)).Val(); ttl <= 0 {
		t.Errorf("finished job TTL %v, want it to expire", ttl)
	}
}

func TestFailingTaskGoesDeadWithItsError(t *testing.T) {
	q, _ := newQueue(t, 5*time.Second)
	job, err := q.Submit(t.Context(), []Item{{"good.example.", "A"}, {"bad.example.", "A"}, {"flaky.example.", "A"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	var flaky atomic.Int32
	j := work(t, q, job.ID, 2, func(ctx context.Context, task *Task) (string, error) {
		switch task.Name {
		case "bad.example.":
			return "", errors.New("upstream refused")
		case "flaky.example.":
			if flaky.Add(1) == 1 {
				panic("first run blows up")
			}
		}
		return "ok", nil
	})
	if j.State != JobFinished || j.Done != 2 || j.Dead != 1 || j.Failed != DefaultMaxAttempts+1 {
		t.Fatalf("job: %+v (want done 2, dead 1, failed %d)", j, DefaultMaxAttempts+1)
	}
	wantCounts(t, q, Counts{Completed: 2, Dead: 1})
	dead, _ := q.Task(t.Context(), job.ID+"-1")
	if dead.State != StateDead || dead.Attempts != DefaultMaxAttempts || dead.Error != "upstream refused" {
		t.Fatalf("dead task: %+v", dead)
	}
	fl, _ := q.Task(t.Context(), job.ID+"-2")
	if fl.State != StateDone || fl.Attempts != 1 || fl.Runs != 2 || !strings.Contains(fl.Error, "panicked") {
		t.Fatalf("flaky task: %+v", fl)
	}
}

// A worker that takes a task and never answers loses it to the reaper once
// its lease runs out; another worker does it; the first worker's late
// result is refused.
func TestReaperTakesBackExpiredLease(t *testing.T) {
	q, _ := newQueue(t, 300*time.Millisecond)
	job, err := q.Submit(t.Context(), items(1, "slow"), "")
	if err != nil {
		t.Fatal(err)
	}
	task, err := q.Claim(t.Context(), "stuck", time.Second)
	if err != nil || task == nil {
		t.Fatalf("claim: %v %v", task, err)
	}
	wantCounts(t, q, Counts{Processing: 1})
	if n, err := q.Reap(t.Context()); err != nil || n != 0 {
		t.Fatalf("reap inside the lease took %d (%v)", n, err)
	}
	time.Sleep(400 * time.Millisecond)
	if n, err := q.Reap(t.Context()); err != nil || n != 1 {
		t.Fatalf("reap after the lease took %d (%v), want 1", n, err)
	}
	wantCounts(t, q, Counts{Pending: 1})
	again, err := q.Claim(t.Context(), "second", time.Second)
	if err != nil || again == nil || again.ID != task.ID || again.Runs != 2 || again.Attempts != 1 {
		t.Fatalf("second claim: %+v %v", again, err)
	}
	if !strings.Contains(again.Error, "worker stuck") {
		t.Errorf("error after the reap: %q", again.Error)
	}
	if ok, err := q.Finish(t.Context(), again.ID, StateDone, "second"); !ok || err != nil {
		t.Fatalf("second finish: %v %v", ok, err)
	}
	if ok, err := q.Finish(t.Context(), task.ID, StateDone, "late"); ok || err != nil {
		t.Fatalf("late finish accepted: %v %v", ok, err)
	}
	wantCounts(t, q, Counts{Completed: 1})
	j, _ := q.Job(t.Context(), job.ID)
	if j.Done != 1 || j.State != JobFinished {
		t.Fatalf("job: %+v", j)
	}
}

// A slow first run whose lease ran out may still finish first: it takes
// the task back out of pending, so the task is not run again.
func TestLateFinishTakesTaskOutOfPending(t *testing.T) {
	q, _ := newQueue(t, 200*time.Millisecond)
	if _, err := q.Submit(t.Context(), items(1, "late"), ""); err != nil {
		t.Fatal(err)
	}
	task, _ := q.Claim(t.Context(), "slow", time.Second)
	time.Sleep(300 * time.Millisecond)
	if n, _ := q.Reap(t.Context()); n != 1 {
		t.Fatalf("reaped %d", n)
	}
	if ok, err := q.Finish(t.Context(), task.ID, StateDone, "slow but done"); !ok || err != nil {
		t.Fatalf("finish from pending: %v %v", ok, err)
	}
	wantCounts(t, q, Counts{Completed: 1})
}

// A worker that died between BLMOVE and its lease leaves a task in
// processing with no lease: the reaper gives it one, then takes it back.
func TestReaperFindsOrphans(t *testing.T) {
	q, c := newQueue(t, 200*time.Millisecond)
	if _, err := q.Submit(t.Context(), items(1, "orphan"), ""); err != nil {
		t.Fatal(err)
	}
	if err := c.LMove(t.Context(), q.Key("pending"), q.Key("processing"), "RIGHT", "LEFT").Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.Reap(t.Context()); n != 0 {
		t.Fatalf("orphan reaped at once")
	}
	if c.ZCard(t.Context(), q.Key("leases")).Val() != 1 {
		t.Fatal("orphan got no lease")
	}
	time.Sleep(300 * time.Millisecond)
	if n, _ := q.Reap(t.Context()); n != 1 {
		t.Fatalf("orphan not taken back")
	}
	wantCounts(t, q, Counts{Pending: 1})
}

func TestCancelEndsPendingTasksUnrun(t *testing.T) {
	q, _ := newQueue(t, 5*time.Second)
	job, err := q.Submit(t.Context(), items(50, "c"), "")
	if err != nil {
		t.Fatal(err)
	}
	cj, err := q.Cancel(t.Context(), job.ID)
	if err != nil || cj.State != JobCanceled {
		t.Fatalf("cancel: %+v %v", cj, err)
	}
	var ran atomic.Int32
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		q.Work(ctx, Workers{N: 2}, func(context.Context, *Task) (string, error) { ran.Add(1); return "", nil })
	})
	var j *Job
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if j, err = q.Job(t.Context(), job.ID); err != nil || j.Canceled == 50 {
			break
		}
	}
	cancel()
	wg.Wait()
	if ran.Load() != 0 || j.Canceled != 50 || j.Pending != 0 || j.State != JobCanceled || j.Finished.IsZero() {
		t.Fatalf("after cancel: ran %d, job %+v", ran.Load(), j)
	}
	if _, err := q.Cancel(t.Context(), "nosuchjob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cancel of a missing job: %v", err)
	}
}

func TestEnqueueOnce(t *testing.T) {
	q, _ := newQueue(t, time.Second)
	task := &Task{ID: "r-abc", Kind: KindRefresh, Key: "dns:{a.example.}:A:IN"}
	for i, want := range []bool{true, false} {
		added, err := q.EnqueueOnce(t.Context(), task)
		if err != nil || added != want {
			t.Fatalf("enqueue %d: %v %v, want %v", i, added, err, want)
		}
	}
	wantCounts(t, q, Counts{Pending: 1})
	got, _ := q.Claim(t.Context(), "w", time.Second)
	if got.Kind != KindRefresh || got.Key != task.Key || got.Job != "" {
		t.Fatalf("claimed %+v", got)
	}
	if ok, _ := q.Finish(t.Context(), got.ID, StateDone, ""); !ok {
		t.Fatal("finish")
	}
	if added, _ := q.EnqueueOnce(t.Context(), task); added {
		t.Fatal("a task finished moments ago was enqueued again")
	}
}

func TestJobsListAndProgress(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	srv := redistest.Start(t)
	q, err := New(Config{Client: srv.Client(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := q.Submit(t.Context(), items(10, "a"), "first")
	now = now.Add(time.Second)
	b, _ := q.Submit(t.Context(), items(4, "b"), "second")
	for range 5 {
		task, _ := q.Claim(t.Context(), "w", time.Second)
		q.Finish(t.Context(), task.ID, StateDone, "")
	}
	now = now.Add(4 * time.Second)
	jobs, err := q.Jobs(t.Context(), 10)
	if err != nil || len(jobs) != 2 || jobs[0].ID != b.ID || jobs[1].ID != a.ID {
		t.Fatalf("jobs: %v %v", jobs, err)
	}
	// a ran 5 of 10 in 5 s: 1/s, 5 s to go.
	if ja := jobs[1]; ja.Done != 5 || ja.Pending != 5 || ja.Rate != 1 || ja.ETA != 5 || ja.Source != "first" {
		t.Fatalf("progress: %+v", ja)
	}
	if _, err := q.Job(t.Context(), "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
}

func TestConfig(t *testing.T) {
	srv := redistest.Start(t)
	for _, cfg := range []Config{{}, {Client: srv.Client(), Name: "bad name"}, {Client: srv.Client(), Lease: time.Millisecond}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	q, err := New(Config{Client: srv.Client(), Name: "jobs-2"})
	if err != nil || q.Key("pending") != "q:{jobs-2}:pending" || q.TaskKey("x") != "q:{jobs-2}:task:x" {
		t.Fatalf("%v %v", q, err)
	}
}
