package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestQueuePlan(t *testing.T) {
	plan := queuePlan(queueCounts())
	want := []queueArr{{1, 1}, {2, 2}, {3, 3}, {4, 4}, {2, 1}, {3, 1}, {4, 1}}
	if !slices.Equal(plan, want) {
		t.Fatalf("plan %v, want %v", plan, want)
	}
	labels := map[queueArr]string{
		{1, 1}: "1 resolverd, 1 worker", {3, 1}: "1 resolverd, 3 workers", {3, 3}: "3 resolverd, 1 worker each",
	}
	for a, l := range labels {
		if a.label() != l {
			t.Errorf("%v: label %q, want %q", a, a.label(), l)
		}
	}
	// Walk the plan as the runner does: the N × 1 series adds one process
	// per step, every other step starts afresh.
	var running []int
	starts, stops := 0, 0
	for _, a := range plan {
		want := a.processes()
		n := 0
		for _, w := range want {
			n += w
		}
		if n != a.workers {
			t.Errorf("%v: processes %v hold %d workers", a, want, n)
		}
		if keep := reuse(running, want); keep < len(running) {
			stops += len(running)
			running = nil
		}
		starts += len(want) - len(running)
		running = want
	}
	if starts != 7 || stops != 6 {
		t.Errorf("one round starts %d resolverd and stops %d before its end, want 7 and 6", starts, stops)
	}
	if reuse([]int{1, 1}, []int{2}) != 0 || reuse([]int{2}, []int{2}) != 1 || reuse(nil, []int{1}) != 0 || reuse([]int{1, 1, 1}, []int{1, 1}) != 0 {
		t.Error("reuse keeps processes the next arrangement does not have")
	}
}

func TestSummarize(t *testing.T) {
	s := func(w, p, tasks int, took time.Duration, err string) queueSample {
		return queueSample{arr: queueArr{w, p}, tasks: tasks, took: took, err: err}
	}
	plan := []queueArr{{1, 1}, {2, 2}, {3, 1}, {4, 1}}
	rows := summarize(plan, []queueSample{
		s(1, 1, 100, 2*time.Second, ""), s(1, 1, 100, 4*time.Second, ""), s(1, 1, 100, 2500*time.Millisecond, ""), // 50, 25, 40: median 40
		s(2, 2, 100, time.Second, ""), s(2, 2, 100, time.Second, "timeout"), // one failure among successes
		s(3, 1, 120, time.Second, ""),
		s(4, 1, 100, 0, "job dead"), s(4, 1, 100, 0, "still dead"), // no round measured
	})
	if len(rows) != len(plan) {
		t.Fatalf("%d rows", len(rows))
	}
	one := rows[0]
	if one.tps != 40 || one.lo != 25 || one.hi != 50 || one.rounds != 3 || one.speedup != 1 || one.perTaskTime != 25*time.Millisecond {
		t.Errorf("1 worker: %+v", one)
	}
	if r := rows[1]; r.tps != 100 || r.rounds != 1 || r.err != "" || r.speedup != 2.5 || r.perTaskTime != 20*time.Millisecond {
		t.Errorf("2 × 1: %+v", r)
	}
	if r := rows[2]; r.tps != 120 || r.speedup != 3 {
		t.Errorf("1 × 3: %+v", r)
	}
	if r := rows[3]; r.rounds != 0 || r.tps != 0 || r.speedup != 0 || r.err != "still dead" {
		t.Errorf("failed row: %+v", r)
	}
	// Without a baseline, no speed-ups.
	for _, r := range summarize(plan[1:], []queueSample{s(2, 2, 10, time.Second, "")}) {
		if r.speedup != 0 {
			t.Errorf("speed-up without a baseline: %+v", r)
		}
	}
}

func TestQueueMarkdown(t *testing.T) {
	rows := []queueRow{
		{arr: queueArr{1, 1}, tps: 45.25, lo: 44, hi: 46, rounds: 2, speedup: 1, perTaskTime: 22100 * time.Microsecond},
		{arr: queueArr{3, 3}, tps: 120, lo: 119, hi: 121, rounds: 2, speedup: 120 / 45.25, perTaskTime: 25 * time.Millisecond},
		{arr: queueArr{3, 1}, tps: 131.9, rounds: 1, speedup: 131.9 / 45.25, perTaskTime: 22700 * time.Microsecond},
		{arr: queueArr{4, 1}, err: "job x | ended\ncanceled"},
	}
	md := queueMarkdown(queueParams{names: 80, delay: 20 * time.Millisecond, rounds: 2, shards: 4, pinned: true}, rows, "plots/queue.png")
	order := []string{"| 1 | 1 resolverd, 1 worker |", "| 3 | 1 resolverd, 3 workers |", "| 4 | 1 resolverd, 4 workers |", "| 3 | 3 resolverd, 1 worker each |"}
	for i := 1; i < len(order); i++ {
		if strings.Index(md, order[i-1]) > strings.Index(md, order[i]) {
			t.Errorf("row %q comes before %q", order[i], order[i-1])
		}
	}
	for _, want := range []string{
		"## Work queue: warm tasks per second by worker count\n",
		"Each job is 80 distinct names",
		"holds every answer 20 ms",
		"exceed 50 tasks/s",
		"| workers | arrangement | tasks/s | range | speed-up vs 1 worker | ideal | worker ms/task |",
		"| 1 | 1 resolverd, 1 worker | 45.2 | 44.0–46.0 | 1.00× | 1× | 22.1 |",
		"| 3 | 1 resolverd, 3 workers | 131.9 | – | 2.91× | 3× | 22.7 |",
		"| 3 | 3 resolverd, 1 worker each | 120.0 | 119.0–121.0 | 2.65× | 3× | 25.0 |",
		"| 4 | 1 resolverd, 4 workers | failed: job x / ended canceled |||||",
		"Three workers in one resolverd against one: **2.91×** (ideal 3×). Three resolverd of one worker each: 2.65×.",
		"(taskset)",
		"![Work queue tasks per second by worker count](plots/queue.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("section lacks %q:\n%s", want, md)
		}
	}
	if md := queueMarkdown(queueParams{names: 80, delay: time.Second, rounds: 1}, rows[3:], ""); strings.Contains(md, "Three workers") || strings.Contains(md, "![") {
		t.Errorf("a section with no figures claims some:\n%s", md)
	}
}

func TestQueuePlot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "queue.png")
	rows := summarize(queuePlan(queueCounts()), []queueSample{
		{arr: queueArr{1, 1}, tasks: 45, took: time.Second},
		{arr: queueArr{2, 1}, tasks: 90, took: time.Second},
		{arr: queueArr{2, 2}, tasks: 88, took: time.Second},
		{arr: queueArr{4, 1}, tasks: 170, took: time.Second},
	})
	if err := queuePlot(file, queueCounts(), rows); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Error("not a PNG")
	}
}

func TestQueueHelpers(t *testing.T) {
	info := "# Clients\r\nconnected_clients:7\r\ncluster_connections:0\r\nblocked_clients:3\r\ntracking_clients:0\r\n"
	if n, err := blockedClients(info); n != 3 || err != nil {
		t.Errorf("blockedClients = %d, %v", n, err)
	}
	if _, err := blockedClients("# Clients\r\nconnected_clients:7\r\n"); err == nil {
		t.Error("INFO without blocked_clients: no error")
	}
	seen := map[string]bool{}
	for seq := range 3 {
		for _, n := range jobNames(seq, 50) {
			if seen[n] || !strings.HasSuffix(n, ".queue.bench.") {
				t.Fatalf("name %q repeated or outside queue.bench.", n)
			}
			seen[n] = true
		}
	}
	if secsText(20*time.Millisecond) != "20 ms" || secsText(1500*time.Millisecond) != "1.5 s" {
		t.Errorf("secsText: %q, %q", secsText(20*time.Millisecond), secsText(1500*time.Millisecond))
	}
}

func TestQueueFlags(t *testing.T) {
	q, err := parseFlags([]string{"-quick"})
	if err != nil || q.queueNames != quickScale().queueNames || q.queueDelay != 20*time.Millisecond || !strings.Contains(q.workloads, "queue") {
		t.Errorf("quick: %+v, %v", q, err)
	}
	if o, err := parseFlags([]string{"-quick", "-queue-names", "200", "-queue-delay", "30ms"}); err != nil || o.queueNames != 200 || o.queueDelay != 30*time.Millisecond {
		t.Errorf("set: %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"-queue-names", "5"}, {"-queue-delay", "0s"}, {"-queue-delay", "2s"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
