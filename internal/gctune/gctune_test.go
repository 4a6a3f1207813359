package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/bytedance/gopkg/util/gctuner"
)

// percent is the collector's percentage now, left as it is.
func percent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// afterCycles runs collections until the percentage leaves 100, at most
// 20: a tuner sets the next percentage from a finalizer, after a cycle,
// on a goroutine of its own, so one cycle may not yet show it. It returns
// the percentage then.
func afterCycles() int {
	p := percent()
	for i := 0; i < 20 && p == 100; i++ {
		runtime.GC()
		runtime.Gosched()
		p = percent()
	}
	return p
}

// After a cycle with a small live heap the percentage is raised, to at most
// MaxPercent; a GOGC in the environment leaves the collector alone.
func TestStart(t *testing.T) {
	defer debug.SetGCPercent(percent())
	debug.SetGCPercent(100)
	if Start(func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	}) {
		t.Fatal("Start tuned with GOGC set")
	}
	if p := afterCycles(); p != 100 {
		t.Fatalf("GOGC set: percentage %d after cycles, want 100 as set", p)
	}

	if !Start(func(string) string { return "" }) {
		t.Fatal("Start did not tune with GOGC unset")
	}
	t.Cleanup(func() { gctuner.Tuning(0) }) // stop what Start began
	// The test binary's live heap is a few megabytes, far below Headroom.
	if p := afterCycles(); p <= 100 || p > MaxPercent {
		t.Fatalf("percentage %d with a small live heap, want in (100, %d]", p, MaxPercent)
	}
}
