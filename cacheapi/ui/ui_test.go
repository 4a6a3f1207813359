package ui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shardns/shardns/cacheapi/ui"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// screenshotEnv names a folder the status page's screenshots are copied
// to, for a person to look at; they always go to the test's temporary
// folder.
const screenshotEnv = "SHARDNS_UI_SCREENSHOTS"

// screenshot saves the whole page as name (a .png) in a temporary folder,
// and in the folder $SHARDNS_UI_SCREENSHOTS names when set.
func screenshot(t *testing.T, tb *tab, name string) {
	t.Helper()
	png := get(t, tb, "screenshot", chromedp.FullScreenshot(100))
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot: not a PNG (%d bytes)", len(png))
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv(screenshotEnv); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name), png, 0o644); err != nil {
			t.Errorf("screenshot: %v", err)
		}
	}
}

// number is one number on the page: its text and its raw data-value.
type number struct {
	Text  string
	Value string
}

// float returns the raw value, or -1 when there is none yet.
func (n number) float() float64 {
	f, err := strconv.ParseFloat(n.Value, 64)
	if err != nil {
		return -1
	}
	return f
}

// statusView is what the page shows, read by readStatus.
type statusView struct {
	Queries, QPS, Hit, P50, P99, Frontends number
	// This process's part.
	ProcessShown                                                   bool
	ProcessAbout                                                   string
	ProcQPS, ProcRecentHit, ProcHit, ProcQueries, ProcP50, ProcP99 number
	ProcEntries, ProcBytes, ProcEvictions                          number
	FleetShown, ShardsShown, FrontendsShown                        bool
	SparkCaption                                                   string
	WarningShown                                                   bool
	WarningText                                                    string
	Shards                                                         []struct{ Addr, State, Hit, Keys, Memory, Policy string }
	FrontendRows                                                   []struct{ ID, QPS, Queries, Hit string }
	Jobs                                                           []struct{ ID, State, Pct, Done, Total string }
	JobProgress                                                    map[string]float64
	SparkInk                                                       int // painted pixels in the sparkline's upper half
	ErrorShown                                                     bool
	ErrorText                                                      string
	Queue                                                          string
	JobsShown                                                      bool
}

// readStatus is the script that reads a statusView from the page.
const readStatus = `(() => {
  const num = (id) => { const e = document.getElementById(id); return { text: e.textContent, value: e.dataset.value || "" }; };
  const cell = (tr, f) => { const c = tr.querySelector('[data-field="' + f + '"]'); return c ? c.textContent : ""; };
  const rows = (sel, f) => Array.from(document.querySelectorAll(sel), f);
  const canvas = document.getElementById("qps-spark");
  const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, Math.floor(canvas.height / 2)).data;
  let ink = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
  const progress = {};
  for (const tr of document.querySelectorAll("#job-rows tr")) progress[tr.dataset.job] = tr.querySelector("progress").value;
  const err = document.getElementById("error");
  return {
    processShown: !document.getElementById("process").hidden,
    processAbout: document.getElementById("process-about").textContent,
    procQPS: num("proc-qps"), procRecentHit: num("proc-recent-hit-ratio"), procHit: num("proc-hit-ratio"),
    procQueries: num("proc-queries"), procP50: num("proc-p50"), procP99: num("proc-p99"),
    procEntries: num("proc-entries"), procBytes: num("proc-bytes"), procEvictions: num("proc-evictions"),
    fleetShown: !document.querySelector("#fleet dl.cards").hidden,
    shardsShown: !document.getElementById("shards-section").hidden,
    frontendsShown: !document.getElementById("frontends-section").hidden,
    sparkCaption: document.getElementById("spark-caption").textContent,
    warningShown: !document.getElementById("warnings").hidden,
    warningText: document.getElementById("warnings").textContent.replace(/\s+/g, " ").trim(),
    queries: num("fleet-queries"), qps: num("fleet-qps"), hit: num("fleet-hit-ratio"),
    p50: num("fleet-p50"), p99: num("fleet-p99"), frontends: num("fleet-frontends"),
    shards: rows("#shard-rows tr", (tr) => ({ addr: tr.dataset.shard, state: cell(tr, "state"), hit: cell(tr, "hit_ratio"),
      keys: cell(tr, "keys"), memory: cell(tr, "memory"), policy: cell(tr, "policy") })),
    frontendRows: rows("#frontend-rows tr", (tr) => ({ id: tr.dataset.frontend, qps: cell(tr, "qps"), queries: cell(tr, "queries"), hit: cell(tr, "hit_ratio") })),
    jobs: rows("#job-rows tr", (tr) => ({ id: tr.dataset.job, state: cell(tr, "state"), pct: tr.querySelector(".pct").textContent,
      done: cell(tr, "done"), total: cell(tr, "total") })),
    jobProgress: progress,
    sparkInk: ink,
    errorShown: !err.hidden, errorText: err.textContent.replace(/\s+/g, " ").trim(),
    queue: document.getElementById("queue-status").textContent,
    jobsShown: !document.getElementById("jobs").hidden,
  };
})()`

// isPercent reports whether s reads like "12.5%".
func isPercent(s string) bool {
	n, ok := strings.CutSuffix(s, "%")
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(n, 64)
	return err == nil && f >= 0 && f <= 100
}

// loader sends lookups to srv one after another until stopped, and counts
// those answered.
type loader struct {
	answered atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

// startLoader looks up names cycling over names under example.test: the
// first round misses, later rounds are answered from the shards.
func startLoader(t *testing.T, srv *httptest.Server, names int) *loader {
	t.Helper()
	l := &loader{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := range 20000 {
			select {
			case <-l.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			name := fmt.Sprintf("n%d.example.test", i%names)
			if err := lookupOnce(srv, name); err != nil {
				t.Errorf("lookup %s: %v", name, err)
				return
			}
			l.answered.Add(1)
		}
	}()
	t.Cleanup(l.halt)
	return l
}

// halt stops the loader and waits for it; the lookup in flight completes.
func (l *loader) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// lookupOnce sends GET /lookup for name and reads the answer.
func lookupOnce(srv *httptest.Server, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/lookup?type=A&name="+url.QueryEscape(name), nil)
	if err != nil {
		return err
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"Status":3`) {
		return fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return nil
}

// TestStatusPageLive loads the page from a cacheapi over three real Redis
// shards, with its frontend publishing to the fleet, and checks that the
// shards and the fleet's numbers appear, that they follow real lookups,
// and that the page says so when /stats fails.
func TestStatusPageLive(t *testing.T) {
	tb := newTab(t)
	shards := redistest.StartN(t, 3)
	s := newSite(t, shards, nil)
	s.publish(t, "ui-test", 200*time.Millisecond)

	tb.do(t, "load the page",
		chromedp.Navigate(s.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#shard-rows tr[data-shard]`)))
	first := waitFor(t, tb, 20*time.Second, "first reading", readStatus, func(v statusView) bool {
		return len(v.Shards) == 3 && len(v.FrontendRows) == 1 && v.Queries.float() >= 0
	})
	addrs := redistest.Addrs(shards)
	slices.Sort(addrs)
	for i, sh := range first.Shards {
		if sh.Addr != addrs[i] || sh.State != "up" || sh.Policy == "" || !strings.Contains(sh.Memory, " / ") {
			t.Errorf("shard row %d: %+v, want %s up with a policy and memory used / max", i, sh, addrs[i])
		}
	}
	if got := first.FrontendRows[0].ID; got != "ui-test" {
		t.Errorf("frontend row %q, want ui-test", got)
	}
	if first.ErrorShown {
		t.Errorf("error banner shown: %q", first.ErrorText)
	}
	if !strings.Contains(first.Queue, "No work queue is configured") || first.JobsShown {
		t.Errorf("queue panel: %q (jobs table shown: %v), want no queue configured", first.Queue, first.JobsShown)
	}
	q0 := first.Queries.float()

	// Real lookups through the API: the numbers must follow.
	load := startLoader(t, s.srv, 40)
	moving := waitFor(t, tb, 30*time.Second, "numbers follow the lookups", readStatus, func(v statusView) bool {
		for _, sh := range v.Shards {
			if !isPercent(sh.Hit) {
				return false
			}
		}
		return len(v.Shards) == 3 && v.Queries.float() > q0 && v.QPS.float() > 0 &&
			v.Hit.float() > 0 && isPercent(v.Hit.Text) && v.SparkInk > 0 &&
			len(v.FrontendRows) == 1 && isPercent(v.FrontendRows[0].Hit) &&
			v.P99.float() > 0 && v.P50.float() > 0
	})
	screenshot(t, tb, "status.png")
	load.halt()
	n := load.answered.Load()
	t.Logf("while loading: %d queries, %s/s, hit ratio %s, p99 %s; shards %+v",
		int64(moving.Queries.float()), moving.QPS.Text, moving.Hit.Text, moving.P99.Text, moving.Shards)

	// Every answered lookup is counted, no more: the page shows the
	// fleet's real counter.
	want := q0 + float64(n)
	settled := waitFor(t, tb, 20*time.Second, fmt.Sprintf("fleet queries reach %v", want), readStatus, func(v statusView) bool {
		return v.Queries.float() >= want
	})
	if got := settled.Queries.float(); got != want {
		t.Errorf("fleet queries %v (%q), want %v: %d lookups answered after %v", got, settled.Queries.Text, want, n, q0)
	}

	tb.checkClean(t)

	// One shard dies: its row says down, the others stay up, and /stats
	// still answers.
	shards[0].Kill()
	oneDown := waitFor(t, tb, 20*time.Second, "a dead shard shown down", readStatus, func(v statusView) bool {
		down := 0
		for _, sh := range v.Shards {
			if sh.State == "down" {
				down++
			}
		}
		return down > 0
	})
	for _, sh := range oneDown.Shards {
		if want := map[bool]string{true: "down", false: "up"}[sh.Addr == shards[0].Addr]; sh.State != want {
			t.Errorf("shard %s shown %q, want %q", sh.Addr, sh.State, want)
		}
		if sh.Addr == shards[0].Addr && sh.Hit != "—" {
			t.Errorf("dead shard %s shows hit ratio %q, want a dash", sh.Addr, sh.Hit)
		}
	}
	if oneDown.ErrorShown {
		t.Errorf("error banner with two shards up: %q", oneDown.ErrorText)
	}

	// Every shard dies: /stats still answers with this process's numbers,
	// and the page says what it could not read.
	for _, sh := range shards {
		sh.Kill()
	}
	partly := waitFor(t, tb, 20*time.Second, "warning banner", readStatus, func(v statusView) bool { return v.WarningShown })
	if !strings.Contains(partly.WarningText, "Partly read") || !strings.Contains(partly.WarningText, "frontends:") ||
		partly.ErrorShown || !partly.ProcessShown {
		t.Errorf("with every shard down: warning %q, error banner %v, process shown %v", partly.WarningText, partly.ErrorShown, partly.ProcessShown)
	}

	// The server goes away: the page says so, keeping the last reading.
	s.srv.CloseClientConnections()
	s.srv.Close()
	failed := waitFor(t, tb, 20*time.Second, "error banner", readStatus, func(v statusView) bool { return v.ErrorShown })
	if !strings.Contains(failed.ErrorText, "Stats unavailable") || !strings.Contains(failed.ErrorText, "Cannot reach the server") {
		t.Errorf("error banner %q, want it to say stats are unavailable and why", failed.ErrorText)
	}
	if len(failed.Shards) != 3 {
		t.Errorf("after the failure the page shows %d shards, want the last reading's 3", len(failed.Shards))
	}
	screenshot(t, tb, "status-failed.png")
	tb.checkClean(t)
}

// jobsServer stands in for the work queue's GET /jobs, which a later
// change adds to the API: one job advancing by 10 tasks per request, one
// finished, one without an id, a null, and fields the page does not know.
// Every other request answers as a list, the others as {"jobs": [...]}.
type jobsServer struct{ calls atomic.Int64 }

func (j *jobsServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	n := j.calls.Add(1)
	list := fmt.Sprintf(`[{"id":"warm-1","total":100,"done":%d,"failed":2,"dead":1,"state":"running","queue":"warm"},`+
		`{"id":"refresh-7","total":"40","done":40},null,{"total":5,"done":1}]`, min(10*n, 97))
	if n%2 == 0 {
		list = `{"jobs":` + list + `,"next":null}`
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, list)
}

// TestQueuePanel checks job progress from a GET /jobs, tolerant of the
// reply's shape, the error banner of a server without /stats, and the
// pause button.
func TestQueuePanel(t *testing.T) {
	tb := newTab(t)
	jobs := &jobsServer{}
	s := newSite(t, nil, func(api http.Handler) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("/jobs", jobs)
		// A server without /stats (an API built with no stats source).
		mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"no such route"}`)
		})
		mux.Handle("/", api)
		return mux
	})
	tb.do(t, "load the page",
		chromedp.Navigate(s.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#job-rows tr[data-job]`)))
	first := waitFor(t, tb, 20*time.Second, "jobs listed", readStatus, func(v statusView) bool {
		return len(v.Jobs) == 3 && v.JobsShown && v.JobProgress["warm-1"] > 0
	})
	ids := []string{first.Jobs[0].ID, first.Jobs[1].ID, first.Jobs[2].ID}
	if !slices.Equal(ids, []string{"warm-1", "refresh-7", "#3"}) {
		t.Errorf("job rows %v, want warm-1, refresh-7, #3", ids)
	}
	if r := first.Jobs[1]; r.Pct != "100%" || r.Total != "40" || r.State != "finished" {
		t.Errorf("finished job row %+v, want 100%% of 40, finished", r)
	}
	if r := first.Jobs[0]; r.State != "running" || r.Total != "100" || !isPercent(r.Pct) {
		t.Errorf("running job row %+v", r)
	}
	if !strings.Contains(first.Queue, "3 jobs") || !strings.Contains(first.Queue, "tasks processed") {
		t.Errorf("queue summary %q", first.Queue)
	}
	// No shards, so no /stats: the banner says so.
	if !first.ErrorShown || !strings.Contains(first.ErrorText, "/stats") {
		t.Errorf("error banner shown %v, %q; want it to say there is no /stats", first.ErrorShown, first.ErrorText)
	}

	// Progress moves.
	p0 := first.JobProgress["warm-1"]
	waitFor(t, tb, 20*time.Second, "job progress moves", readStatus, func(v statusView) bool {
		return v.JobProgress["warm-1"] > p0
	})

	// Paused, the page stops reading (one reading may be in flight).
	screenshot(t, tb, "queue.png")
	pressUntil(t, tb, "pause", "true")
	paused := jobs.calls.Load()
	time.Sleep(3 * time.Second)
	if got := jobs.calls.Load(); got > paused+1 {
		t.Errorf("%d readings of /jobs while paused", got-paused)
	}
	resumed := jobs.calls.Load()
	pressUntil(t, tb, "pause", "false")
	waitFor(t, tb, 10*time.Second, "reading again after resuming", `true`, func(bool) bool { return jobs.calls.Load() > resumed })
	tb.checkClean(t)
}

// TestPageEnforcesCSP checks that the browser applies the page's policy:
// an inline script added to the page does not run, and the violation is
// seen (so the other tests' clean checks can fail).
func TestPageEnforcesCSP(t *testing.T) {
	tb := newTab(t)
	srv := httptest.NewServer(ui.Handler())
	t.Cleanup(srv.Close)
	tb.do(t, "load the page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitReady(chromedp.ID("pause")))
	ran := get(t, tb, "inject an inline script", chromedp.Evaluate[bool](`(() => {
		const s = document.createElement("script");
		s.textContent = "window.inlineRan = true";
		document.head.appendChild(s);
		return window.inlineRan === true;
	})()`))
	if ran {
		t.Error("an inline script ran despite the Content-Security-Policy")
	}
	waitFor(t, tb, 10*time.Second, "the violation is reported", `true`, func(bool) bool {
		_, csp := tb.problems()
		return len(csp) > 0
	})
}
