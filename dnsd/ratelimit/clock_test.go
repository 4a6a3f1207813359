package ratelimit

import (
	"sync/atomic"
	"time"
)

// fakeClock is a clock tests move by hand; safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

var clockBase = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *fakeClock) Now() time.Time { return clockBase.Add(time.Duration(c.ns.Load())) }

func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
