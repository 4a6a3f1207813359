// Package gctune lets the Go garbage collector run less often while a
// daemon's heap is small.
//
// With Go's default (GOGC=100) a cycle starts whenever the heap has grown by
// as much as was live after the last one, and at least every 4 MB. A
// daemon whose live heap is a few megabytes (resolverd always, dnsd with a
// small or still cold L1) then collects every few hundred misses, and each
// cycle marks for a millisecond or more of CPU, in slices that the queries
// arriving meanwhile wait behind: a latency tail. Start raises the
// collector's percentage after every cycle so that the next one comes when
// the heap reaches Headroom, at most MaxPercent of what is live and never
// below Go's default: 8 MB live may grow to 48 MB before the next cycle,
// while 40 MB live still grows to 80 MB, as by default. (Go's floor of
// 4 MB scales with the percentage: a tiny heap may grow to 20 MB.) The
// memory this costs is at most Headroom beyond what the default would use.
package gctune

import "github.com/bytedance/gopkg/util/gctuner"

const (
	// Headroom is the heap size below which cycles are spaced out.
	Headroom = 64 << 20
	// MaxPercent bounds the percentage for a tiny live heap.
	MaxPercent = 500
	// MinPercent is Go's default: a large heap is collected as it would be
	// without tuning.
	MinPercent = 100
)

// Start tunes the collector for the rest of the process's life and
// reports true, unless GOGC is set in the environment (looked up with
// getenv): then GOGC decides, as it always does, and Start reports false.
// GOMEMLIMIT, when set, still bounds the heap either way.
func Start(getenv func(string) string) bool {
	if getenv("GOGC") != "" {
		return false
	}
	// The tuner reads its bounds without synchronisation after each
	// cycle: set them only when they differ (a first Start), never under
	// a tuner already running.
	if gctuner.GetMinGCPercent() != MinPercent {
		gctuner.SetMinGCPercent(MinPercent)
	}
	if gctuner.GetMaxGCPercent() != MaxPercent {
		gctuner.SetMaxGCPercent(MaxPercent)
	}
	gctuner.Tuning(Headroom)
	return true
}
