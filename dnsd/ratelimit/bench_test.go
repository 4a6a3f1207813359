package ratelimit

import (
	"net/netip"
	"sync/atomic"
	"testing"
)

// BenchmarkCheckKnown is the hot path: one tracked prefix, real clock.
func BenchmarkCheckKnown(b *testing.B) {
	l := New(Config{Rate: 1e9})
	a := netip.MustParseAddr("192.0.2.1")
	l.Check(a)
	b.ReportAllocs()
	for b.Loop() {
		l.Check(a)
	}
}

func BenchmarkCheckKnownIPv6(b *testing.B) {
	l := New(Config{Rate: 1e9})
	a := netip.MustParseAddr("2001:db8::1")
	l.Check(a)
	b.ReportAllocs()
	for b.Loop() {
		l.Check(a)
	}
}

// BenchmarkCheckOverLimit measures a flooding prefix (every check slips
// or drops).
func BenchmarkCheckOverLimit(b *testing.B) {
	l := New(Config{Rate: 1})
	a := netip.MustParseAddr("192.0.2.1")
	l.Check(a)
	b.ReportAllocs()
	for b.Loop() {
		l.Check(a)
	}
}

// BenchmarkCheckParallelKnown spreads parallel checks over 4096 tracked
// prefixes.
func BenchmarkCheckParallelKnown(b *testing.B) {
	const n = 4096
	l := New(Config{Rate: 100})
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		addrs[i] = v4Prefix(i)
		l.Check(addrs[i])
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 977
		for pb.Next() {
			l.Check(addrs[i%n])
			i++
		}
	})
}

// BenchmarkCheckParallelOnePrefix is the worst case for contention: all
// goroutines hit one bucket.
func BenchmarkCheckParallelOnePrefix(b *testing.B) {
	l := New(Config{Rate: 100})
	a := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Check(a)
		}
	})
}

// BenchmarkCheckParallelNewPrefixes is a flood of distinct (spoofed)
// prefixes, far more than MaxTracked: every check evicts.
func BenchmarkCheckParallelNewPrefixes(b *testing.B) {
	l := New(Config{Rate: 100, MaxTracked: 10_000})
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) << 24
		for pb.Next() {
			l.Check(v6Prefix(i))
			i++
		}
	})
}

func BenchmarkCheckDisabled(b *testing.B) {
	l := New(Config{})
	a := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		l.Check(a)
	}
}

// BenchmarkCheckKnownFixedClock is BenchmarkCheckKnown without the cost
// of reading the system clock: the limiter's own work.
func BenchmarkCheckKnownFixedClock(b *testing.B) {
	c := &fakeClock{}
	l := New(Config{Rate: 1e9, Now: c.Now})
	a := netip.MustParseAddr("192.0.2.1")
	l.Check(a)
	b.ReportAllocs()
	for b.Loop() {
		l.Check(a)
	}
}
