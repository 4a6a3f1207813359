package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shardns/shardns/bench/peers"
	"github.com/shardns/shardns/bench/proc"
	"github.com/shardns/shardns/bench/report"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/queue"
)

// The queue workload measures warm tasks per second through the whole
// fleet: a job of distinct names POSTed to cacheapi's /jobs, queued on the
// work queue's Redis, worked by resolverd's queue workers, each resolving
// through a slow upstream and writing the answer to the cache shards, until
// GET /jobs/{id} says the job has finished.

// Bounds and settings of the queue workload.
const (
	queueShards    = 4                     // cache shards the workers write to
	queueJobWait   = 2 * time.Minute       // one job, from POST to its end
	queuePoll      = 10 * time.Millisecond // between two GET /jobs/{id}
	queueReadyWait = 15 * time.Second      // workers of a new arrangement all waiting on the queue
	queueHTTP      = 10 * time.Second      // one request to cacheapi
	queueWarmUp    = 2                     // names per worker in the unmeasured job before each measurement
)

// queueCounts are the worker counts compared; the first is the baseline.
func queueCounts() []int { return []int{1, 2, 3, 4} }

// queueArr is one way of running workers: procs resolverd processes with
// workers/procs queue workers each.
type queueArr struct {
	workers, procs int
}

func (a queueArr) label() string {
	switch {
	case a.workers == 1:
		return "1 resolverd, 1 worker"
	case a.procs == 1:
		return fmt.Sprintf("1 resolverd, %d workers", a.workers)
	default:
		return fmt.Sprintf("%d resolverd, %d worker each", a.procs, a.workers/a.procs)
	}
}

// processes is the -workers of each resolverd of the arrangement.
func (a queueArr) processes() []int {
	out := make([]int, a.procs)
	for i := range out {
		out[i] = a.workers / a.procs
	}
	return out
}

// queuePlan is the order of one round: first N processes of one worker,
// N rising (its first step, one worker, is the baseline of both series, and
// each step keeps the processes of the one before), then one process of N
// workers for every N above one.
func queuePlan(counts []int) []queueArr {
	var out []queueArr
	for _, n := range counts {
		out = append(out, queueArr{workers: n, procs: n})
	}
	for _, n := range counts {
		if n > 1 {
			out = append(out, queueArr{workers: n, procs: 1})
		}
	}
	return out
}

// reuse reports how many of the running resolverd (their -workers, in the
// order started) the next arrangement keeps: all of them when they are its
// first processes, else none.
func reuse(running, next []int) int {
	if len(running) <= len(next) && slices.Equal(running, next[:len(running)]) {
		return len(running)
	}
	return 0
}

// queueSample is one measured job.
type queueSample struct {
	arr   queueArr
	tasks int
	took  time.Duration // from POST /jobs to the job's end
	err   string
}

func (s queueSample) rate() float64 {
	if s.err != "" || s.took <= 0 {
		return 0
	}
	return float64(s.tasks) / s.took.Seconds()
}

// queueRow is one arrangement over the rounds.
type queueRow struct {
	arr         queueArr
	tps         float64 // tasks per second, the median of the rounds
	lo, hi      float64 // the slowest and fastest round
	rounds      int     // rounds measured
	err         string  // the last failure, when no round was measured
	speedup     float64 // tps over the baseline's; 0 when either is missing
	perTaskTime time.Duration
}

// summarize gathers samples into one row per arrangement of plan, with
// speed-ups over the one-worker row.
func summarize(plan []queueArr, samples []queueSample) []queueRow {
	rows := make([]queueRow, len(plan))
	var base float64
	for i, a := range plan {
		r := queueRow{arr: a}
		var rates []float64
		for _, s := range samples {
			if s.arr != a {
				continue
			}
			if s.err != "" {
				r.err = s.err
				continue
			}
			rates = append(rates, s.rate())
		}
		if len(rates) > 0 {
			r.err = ""
			r.rounds = len(rates)
			r.tps = median(rates)
			r.lo, r.hi = slices.Min(rates), slices.Max(rates)
			r.perTaskTime = time.Duration(float64(a.workers) / r.tps * float64(time.Second))
		}
		if a.workers == 1 {
			base = r.tps
		}
		rows[i] = r
	}
	for i := range rows {
		if base > 0 && rows[i].tps > 0 {
			rows[i].speedup = rows[i].tps / base
		}
	}
	return rows
}

// queueParams describe a run of the workload, for its section.
type queueParams struct {
	names  int
	delay  time.Duration
	rounds int
	shards int
	pinned bool
}

// rowOfArr returns the row of a.
func rowOfArr(rows []queueRow, a queueArr) (queueRow, bool) {
	for _, r := range rows {
		if r.arr == a {
			return r, true
		}
	}
	return queueRow{}, false
}

// queueMarkdown is the workload's RESULTS.md section; plot is the PNG's
// path relative to RESULTS.md, or "".
func queueMarkdown(p queueParams, rows []queueRow, plot string) string {
	var b strings.Builder
	b.WriteString("## Work queue: warm tasks per second by worker count\n\n")
	fmt.Fprintf(&b, "Each job is %d distinct names (type A) POSTed as JSON to the real `cacheapi` binary's `/jobs`; "+
		"the tasks go onto the work queue's Redis (AOF with fsync every second, noeviction, as `deploy/redis/queue.conf`) "+
		"and `resolverd` processes started with `-workers` take them, resolve each name through an upstream that holds every answer %s "+
		"(`bench/fixeddns -delay`), and write the answer to %d Redis cache shards. "+
		"A job's time runs from the POST to the end stamp of its last task, read back with `GET /jobs/{id}`; "+
		"tasks/s is names over that time, the median of %d rounds, and every round runs every arrangement in turn on fresh names. "+
		"Before each measured job, an unmeasured one of %d names per worker makes sure every worker is connected. ",
		p.names, secsText(p.delay), p.shards, p.rounds, queueWarmUp)
	b.WriteString("Two ways of running N workers are measured: one `resolverd` with `-workers N`, and N `resolverd` processes with `-workers 1` each. ")
	fmt.Fprintf(&b, "**ideal** is N times the one-worker rate; with a %s upstream one worker cannot exceed %.0f tasks/s, "+
		"and **worker ms/task** (N ÷ tasks/s) is the time one task holds a worker: the upstream's %s plus the queue's and the cache's own cost.",
		secsText(p.delay), 1/p.delay.Seconds(), secsText(p.delay))
	if p.pinned {
		b.WriteString(" Every server process runs on the CPUs left after CPU 0 (taskset), as in the load runs.")
	}
	b.WriteString("\n\n| workers | arrangement | tasks/s | range | speed-up vs 1 worker | ideal | worker ms/task |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|\n")
	for _, r := range tableOrder(rows) {
		if r.rounds == 0 {
			fmt.Fprintf(&b, "| %d | %s | failed: %s |||||\n", r.arr.workers, r.arr.label(), oneLineText(r.err))
			continue
		}
		rng := "–"
		if r.rounds > 1 {
			rng = fmt.Sprintf("%.1f–%.1f", r.lo, r.hi)
		}
		sp := "–"
		if r.speedup > 0 {
			sp = fmt.Sprintf("%.2f×", r.speedup)
		}
		fmt.Fprintf(&b, "| %d | %s | %.1f | %s | %s | %d× | %.1f |\n",
			r.arr.workers, r.arr.label(), r.tps, rng, sp, r.arr.workers, float64(r.perTaskTime)/float64(time.Millisecond))
	}
	b.WriteString("\n")
	if one, ok := rowOfArr(rows, queueArr{workers: 1, procs: 1}); ok && one.tps > 0 {
		if three, ok := rowOfArr(rows, queueArr{workers: 3, procs: 1}); ok && three.tps > 0 {
			fmt.Fprintf(&b, "Three workers in one resolverd against one: **%.2f×** (ideal 3×).", three.speedup)
			if p3, ok := rowOfArr(rows, queueArr{workers: 3, procs: 3}); ok && p3.tps > 0 {
				fmt.Fprintf(&b, " Three resolverd of one worker each: %.2f×.", p3.speedup)
			}
			b.WriteString("\n\n")
		}
	}
	if plot != "" {
		fmt.Fprintf(&b, "![Work queue tasks per second by worker count](%s)\n\n", plot)
	}
	return b.String()
}

// tableOrder lists the one-process series first (it starts with the
// baseline, one worker), then the one-worker-per-process series, each by
// worker count.
func tableOrder(rows []queueRow) []queueRow {
	out := slices.Clone(rows)
	slices.SortStableFunc(out, func(a, b queueRow) int {
		if sa, sb := a.arr.procs > 1, b.arr.procs > 1; sa != sb {
			if sa {
				return 1
			}
			return -1
		}
		return a.arr.workers - b.arr.workers
	})
	return out
}

// secsText writes a delay as "20 ms".
func secsText(d time.Duration) string {
	if d < time.Second {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64) + " ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}

func oneLineText(s string) string {
	s = strings.NewReplacer("\n", " ", "|", "/").Replace(s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// queuePlot draws tasks/s against the worker count: one line per way of
// running the workers, and the ideal line.
func queuePlot(file string, counts []int, rows []queueRow) error {
	xs := make([]float64, len(counts))
	one, many, ideal := make([]float64, len(counts)), make([]float64, len(counts)), make([]float64, len(counts))
	base, _ := rowOfArr(rows, queueArr{workers: 1, procs: 1})
	for i, n := range counts {
		xs[i] = float64(n)
		if r, ok := rowOfArr(rows, queueArr{workers: n, procs: 1}); ok {
			one[i] = r.tps
		}
		if r, ok := rowOfArr(rows, queueArr{workers: n, procs: n}); ok {
			many[i] = r.tps
		}
		ideal[i] = float64(n) * base.tps
	}
	return report.Lines(file, "Work queue: warm tasks per second", "workers", "tasks/s", xs, []report.Series{
		{Name: "1 resolverd, N workers", Values: one},
		{Name: "N resolverd, 1 worker each", Values: many},
		{Name: "ideal: N × 1 worker", Values: ideal},
	})
}

// queueFleet is what every arrangement shares: the slow upstream, the
// queue's Redis, the cache shards and cacheapi.
type queueFleet struct {
	upstream string
	queue    string
	shards   string
	api      string
	token    string // cacheapi's bearer token
	procs    []*proc.Proc
	qc       *redis.Client // the queue's Redis, to count waiting workers
	cache    *cache.Redis  // the cache shards, to check that answers arrived
	http     *http.Client
	seq      int // jobs submitted, for fresh names
}

func (f *queueFleet) close() {
	if f.qc != nil {
		f.qc.Close()
	}
	if f.cache != nil {
		f.cache.Close()
	}
	for i := len(f.procs) - 1; i >= 0; i-- {
		f.procs[i].Stop()
	}
}

// startQueueFleet starts the shared part; resolverd processes come and go
// per arrangement. cacheapi needs a resolver for its lookups: a resolverd
// with no workers, idle during the run.
func (b *bench) startQueueFleet(ctx context.Context) (f *queueFleet, err error) {
	f = &queueFleet{http: &http.Client{Timeout: queueHTTP}}
	defer func() {
		if err != nil {
			f.close()
			f = nil
		}
	}()
	up, err := peers.Delayed(ctx, b.env, b.bins.fixed, b.o.queueDelay)
	if err != nil {
		return nil, err
	}
	f.procs = append(f.procs, up.Procs...)
	f.upstream = up.Addr
	qaddr, qp, err := peers.QueueRedis(ctx, b.env, b.tools.redis)
	if err != nil {
		return nil, err
	}
	f.procs = append(f.procs, qp)
	f.queue = qaddr
	shards, sp, err := peers.CacheShards(ctx, b.env, b.tools.redis, "queue cache", queueShards)
	if err != nil {
		return nil, err
	}
	f.procs = append(f.procs, sp...)
	f.shards = strings.Join(shards, ",")
	rp, raddr, err := peers.Resolverd(ctx, b.env, b.workerConfig(f, "resolverd-idle", 0))
	if err != nil {
		return nil, err
	}
	f.procs = append(f.procs, rp)
	api, err := peers.Cacheapi(ctx, b.env, peers.CacheapiConfig{Cacheapi: b.bins.cacheapi, Redis: f.shards, Resolver: raddr, QueueRedis: f.queue})
	if err != nil {
		return nil, err
	}
	f.procs = append(f.procs, api.Proc)
	f.api, f.token = api.Base, api.Token
	f.qc = redis.NewClient(&redis.Options{Addr: f.queue, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		DisableIdentity: true, MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	if f.cache, err = cache.NewRing(cache.RedisConfig{Addrs: shards, Timeout: time.Second}); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return f, nil
}

func (b *bench) workerConfig(f *queueFleet, name string, workers int) peers.WorkerConfig {
	return peers.WorkerConfig{Resolverd: b.bins.resolverd, Name: name, Upstream: f.upstream, Redis: f.shards, QueueRedis: f.queue, Workers: workers}
}

// queueWorkload runs every arrangement for every round and returns the
// RESULTS.md section.
func (b *bench) queueWorkload(ctx context.Context) (string, error) {
	f, err := b.startQueueFleet(ctx)
	if err != nil {
		return "", err
	}
	defer f.close()
	counts := queueCounts()
	plan := queuePlan(counts)
	var samples []queueSample
	var running []*proc.Proc
	var runningW []int
	stopAll := func() {
		stopConcurrently(running)
		running, runningW = nil, nil
	}
	defer func() { stopConcurrently(running) }()
	for round := range b.o.rounds {
		for i, a := range plan {
			want := a.processes()
			if keep := reuse(runningW, want); keep < len(runningW) {
				stopAll()
			}
			s := queueSample{arr: a, tasks: b.o.queueNames}
			err := func() error {
				for len(running) < len(want) {
					w := want[len(running)]
					p, _, err := peers.Resolverd(ctx, b.env, b.workerConfig(f, fmt.Sprintf("resolverd-r%d-s%d-p%d", round, i, len(running)), w))
					if err != nil {
						return err
					}
					running, runningW = append(running, p), append(runningW, w)
				}
				took, err := f.measure(ctx, a.workers, b.o.queueNames)
				s.took = took
				return err
			}()
			if err != nil {
				if ctx.Err() != nil {
					return "", ctx.Err()
				}
				s.err = err.Error()
				b.log.Warn("queue workload: measurement failed", "arrangement", a.label(), "err", err)
				stopAll()
			} else {
				b.log.Info("queue workload", "round", round+1, "arrangement", a.label(), "tasks", s.tasks,
					"took", s.took.Round(time.Millisecond), "tasks_per_s", strconv.FormatFloat(s.rate(), 'f', 1, 64))
			}
			samples = append(samples, s)
		}
		stopAll()
	}
	rows := summarize(plan, samples)
	file := filepath.Join(b.o.plots, "queue.png")
	rel := filepath.ToSlash(filepath.Join(filepath.Base(filepath.Clean(b.o.plots)), "queue.png"))
	if err := queuePlot(file, counts, rows); err != nil {
		b.log.Warn("queue workload: no plot", "err", err)
		rel = ""
	}
	return queueMarkdown(queueParams{names: b.o.queueNames, delay: b.o.queueDelay, rounds: b.o.rounds, shards: queueShards,
		pinned: len(b.env.Prefix) > 0}, rows, rel), nil
}

// stopConcurrently stops ps at once and waits for all: each resolverd
// takes up to a queue poll (a second) to let its workers go.
func stopConcurrently(ps []*proc.Proc) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(p.Stop)
	}
	wg.Wait()
}

// measure waits until workers workers wait on the queue, runs an
// unmeasured warm-up job, then times a job of n fresh names.
func (f *queueFleet) measure(ctx context.Context, workers, n int) (time.Duration, error) {
	if err := f.waitWorkers(ctx, workers); err != nil {
		return 0, err
	}
	if _, err := f.runJob(ctx, queueWarmUp*workers); err != nil {
		return 0, fmt.Errorf("warm-up job: %w", err)
	}
	return f.runJob(ctx, n)
}

// waitWorkers waits until exactly n clients of the queue's Redis block in
// BLMOVE: every worker of the arrangement, and none of one stopped.
func (f *queueFleet) waitWorkers(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, queueReadyWait)
	defer cancel()
	last := -1
	for {
		info, err := f.qc.Info(ctx, "clients").Result()
		if err == nil {
			if last, err = blockedClients(info); err == nil && last == n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: %d workers waiting on the queue, want %d (last error: %v)", last, n, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// blockedClients reads blocked_clients from the text of INFO clients.
func blockedClients(info string) (int, error) {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "blocked_clients:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("bench: INFO clients has no blocked_clients")
}

// jobNames are n names no job has asked for yet.
func jobNames(seq, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("t%d.j%d.queue.bench.", i, seq)
	}
	return out
}

// runJob POSTs a job of n fresh names, waits until it ends, checks that
// every task was done and that an answer reached the cache, and returns
// the time from the POST to the job's end.
func (f *queueFleet) runJob(ctx context.Context, n int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, queueJobWait)
	defer cancel()
	names := jobNames(f.seq, n)
	f.seq++
	body, err := json.Marshal(map[string]any{"names": names, "type": "A"})
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	start := time.Now()
	var job queue.Job
	if err := f.call(ctx, http.MethodPost, "/jobs", body, http.StatusAccepted, &job); err != nil {
		return 0, err
	}
	for job.State == queue.JobRunning {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("bench: job %s not done within %v: %d of %d ended", job.ID, queueJobWait, job.Total-job.Pending, job.Total)
		case <-time.After(queuePoll):
		}
		if err := f.call(ctx, http.MethodGet, "/jobs/"+job.ID, nil, http.StatusOK, &job); err != nil {
			return 0, err
		}
	}
	polled := time.Since(start)
	if job.State != queue.JobFinished || job.Total != int64(n) || job.Done != int64(n) {
		return 0, fmt.Errorf("bench: job %s ended %s: %d of %d done, %d dead, %d failed runs", job.ID, job.State, job.Done, n, job.Dead, job.Failed)
	}
	last := names[n-1]
	if _, err := f.cache.Get(ctx, dnsmsg.Key(last, dns.TypeA, dns.ClassINET, false, false)); err != nil {
		return 0, fmt.Errorf("bench: %s not in the cache after its job: %w", last, err)
	}
	took := job.Finished.Sub(start)
	if took <= 0 || took > polled {
		took = polled // the end stamp is in ms: at worst, the poll's view
	}
	return took, nil
}

// call sends one request to cacheapi and decodes the JSON reply into out.
func (f *queueFleet) call(ctx context.Context, method, path string, body []byte, want int, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.api+path, rd)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := f.http.Do(req)
	if err != nil {
		return fmt.Errorf("bench: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("bench: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("bench: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("bench: %s %s: %w", method, path, err)
	}
	return nil
}

// queueEstimate is how long the queue workload takes: every job at the
// delay-bound rate, plus starts, stops and warm-ups.
func (b *bench) queueEstimate() time.Duration {
	var d time.Duration
	for _, a := range queuePlan(queueCounts()) {
		perTask := b.o.queueDelay + 2*time.Millisecond
		d += time.Duration(b.o.queueNames+queueWarmUp*a.workers) * perTask / time.Duration(a.workers)
		d += 1500 * time.Millisecond // start, connect, stop
	}
	return time.Duration(b.o.rounds) * d
}
