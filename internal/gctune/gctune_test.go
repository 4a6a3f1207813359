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
	runtime.GC()
	runtime.GC()
	if p := percent(); p != 100 {
		t.Fatalf("GOGC set: percentage %d after two cycles, want 100 as set", p)
	}

	if !Start(func(string) string { return "" }) {
		t.Fatal("Start did not tune with GOGC unset")
	}
	t.Cleanup(func() { gctuner.Tuning(0) }) // stop what Start began
	// A finalizer runs after each cycle and sets the next percentage: give
	// it a few cycles to have run at least once.
	var p int
	for range 20 {
		runtime.GC()
		runtime.Gosched()
		if p = percent(); p > 100 {
			break
		}
	}
	// The test binary's live heap is a few megabytes, far below Headroom.
	if p <= 100 || p > MaxPercent {
		t.Fatalf("percentage %d with a small live heap, want in (100, %d]", p, MaxPercent)
	}
}
