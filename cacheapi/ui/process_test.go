package ui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestStatusPageProcess loads the page from a server without Redis shards
// (the in-process cache only, as `go run ./dnsd` runs) and checks that it
// draws the process's own numbers, follows real lookups, and hides the
// fleet's parts instead of failing.
func TestStatusPageProcess(t *testing.T) {
	tb := newTab(t)
	s := newSite(t, nil, nil)
	tb.do(t, "load the page",
		chromedp.Navigate(s.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("process")))
	first := waitFor(t, tb, 20*time.Second, "first reading", readStatus, func(v statusView) bool {
		return v.ProcessShown && v.ProcQueries.float() >= 0
	})
	if first.ErrorShown || first.WarningShown {
		t.Errorf("banners shown: error %q, warning %q", first.ErrorText, first.WarningText)
	}
	if first.ShardsShown || first.FrontendsShown || first.FleetShown {
		t.Errorf("fleet parts shown without shards: shards %v, frontends %v, fleet cards %v", first.ShardsShown, first.FrontendsShown, first.FleetShown)
	}
	if !strings.Contains(first.ProcessAbout, "cacheapi") && !strings.Contains(first.ProcessAbout, "process") {
		t.Errorf("process caption %q", first.ProcessAbout)
	}
	if !strings.Contains(first.ProcEntries.Text, " / ") || !strings.Contains(first.ProcBytes.Text, "/ 1.0 MiB") {
		t.Errorf("cache entries %q, memory %q; want used / bound", first.ProcEntries.Text, first.ProcBytes.Text)
	}
	q0 := first.ProcQueries.float()

	// Real lookups over 30 names: the first round fills L1, the rest hit.
	load := startLoader(t, s.srv, 30)
	moving := waitFor(t, tb, 30*time.Second, "process numbers follow the lookups", readStatus, func(v statusView) bool {
		return v.ProcQueries.float() > q0+60 && v.ProcQPS.float() > 0 && isPercent(v.ProcRecentHit.Text) &&
			v.ProcRecentHit.float() > 0 && v.ProcP50.float() > 0 && v.ProcP99.float() > 0 &&
			v.ProcEntries.float() >= 30 && v.ProcBytes.float() > 0 && v.SparkInk > 0
	})
	screenshot(t, tb, "status-process.png")
	load.halt()
	if !strings.HasPrefix(moving.SparkCaption, "This process's queries per second") {
		t.Errorf("sparkline caption %q, want this process's rate", moving.SparkCaption)
	}
	t.Logf("process: %s queries, %s/s, recent hit ratio %s, p50 %s, p99 %s, %s entries, %s",
		moving.ProcQueries.Text, moving.ProcQPS.Text, moving.ProcRecentHit.Text, moving.ProcP50.Text, moving.ProcP99.Text,
		moving.ProcEntries.Text, moving.ProcBytes.Text)

	// Every answered lookup is counted, no more.
	want := q0 + float64(load.answered.Load())
	settled := waitFor(t, tb, 20*time.Second, "process queries settle", readStatus, func(v statusView) bool {
		return v.ProcQueries.float() >= want
	})
	if got := settled.ProcQueries.float(); got != want {
		t.Errorf("process queries %v, want %v", got, want)
	}
	tb.checkClean(t)
}
