// Package ratelimit limits responses per client prefix, in the manner of
// BIND's response rate limiting (RRL): each IPv4 /24 or IPv6 /56 (by
// default) has a token bucket; a UDP query over its limit is either
// dropped or "slipped", answered empty with TC=1, so a real client behind
// a spoofed-looking flood can still retry over TCP while a reflection
// attack gains nothing.
//
// State is split over mutex-guarded shards, each a bounded LRU of
// buckets, so memory stays bounded under floods of distinct (spoofed)
// sources and concurrent queries rarely contend.
package ratelimit

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
)

// Action is what to do with one UDP query.
type Action int

const (
	// Allow means answer normally.
	Allow Action = iota
	// Slip means answer with an empty response with TC=1, so the client
	// retries over TCP.
	Slip
	// Drop means send nothing.
	Drop
)

// String returns "allow", "slip" or "drop".
func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Slip:
		return "slip"
	case Drop:
		return "drop"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Config configures a Limiter. Zero (or negative) fields take their
// defaults, except Slip, where negative means "never slip".
type Config struct {
	// Rate is the sustained queries per second allowed per prefix. 0 (or
	// negative, NaN, +Inf) turns rate limiting off.
	Rate float64
	// Burst is the bucket size: queries a quiet prefix may send at once.
	// Default max(1, int(Rate)).
	Burst int
	// IPv4Prefix is the prefix length IPv4 clients are grouped by.
	// Default 24; values above 32 mean 32.
	IPv4Prefix int
	// IPv6Prefix is the prefix length IPv6 clients are grouped by.
	// Default 56; values above 128 mean 128.
	IPv6Prefix int
	// Slip chooses what happens to over-limit queries: the first, then
	// every Slip-th after it, of a prefix's over-limit queries is slipped
	// (answered empty with TC=1), the rest are dropped; the count restarts
	// when the bucket has refilled. 1 slips every one. 0 means the default
	// 2; NoSlip (any negative value) drops every one, like BIND's "slip 0".
	Slip int
	// MaxTracked bounds the prefixes tracked at once; the least recently
	// seen are forgotten first (and start again with a full bucket). The
	// bound is split evenly over internal shards, so forgetting may begin
	// somewhat before MaxTracked prefixes are tracked. Default 100000.
	MaxTracked int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults for Config's zero fields.
const (
	DefaultIPv4Prefix = 24
	DefaultIPv6Prefix = 56
	DefaultSlip       = 2
	DefaultMaxTracked = 100000
)

// NoSlip as Config.Slip drops every over-limit query.
const NoSlip = -1

// Stats are a Limiter's counters.
type Stats struct {
	// Tracked is the number of prefixes with a bucket now.
	Tracked int
	// Allowed, Slipped and Dropped count Check's results.
	Allowed, Slipped, Dropped uint64
}

// Limiter rate-limits queries per client prefix. It is safe for
// concurrent use. A nil *Limiter allows everything. Reconfigure changes
// its settings while it is in use.
type Limiter struct {
	cur atomic.Pointer[limits] // never nil once built
}

// limits is one configuration's buckets.
type limits struct {
	ratePerNs float64 // tokens per nanosecond
	burst     float64
	slip      int // 0: never slip
	mask4     uint32
	mask6     key
	now       func() time.Time
	epoch     time.Time
	seed      uint64
	shards    []shard // nil when limiting is off
}

// New returns a Limiter for cfg, with defaults filled in.
func New(cfg Config) *Limiter {
	l := new(Limiter)
	l.cur.Store(newLimits(cfg))
	return l
}

// Reconfigure replaces l's settings with cfg's (defaults filled in as by
// New), at once for every query: every prefix starts again with a full
// bucket, and Stats count from here.
func (l *Limiter) Reconfigure(cfg Config) {
	l.cur.Store(newLimits(cfg))
}

func newLimits(cfg Config) *limits {
	l := &limits{now: cfg.Now}
	if l.now == nil {
		l.now = time.Now
	}
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 1) {
		return l
	}
	l.ratePerNs = cfg.Rate / float64(time.Second)
	burst := cfg.Burst
	if burst <= 0 {
		burst = max(1, int(min(cfg.Rate, math.MaxInt32)))
	}
	l.burst = float64(burst)
	switch {
	case cfg.Slip == 0:
		l.slip = DefaultSlip
	case cfg.Slip > 0:
		l.slip = min(cfg.Slip, math.MaxInt32)
	}
	l.mask4 = math.MaxUint32 << (32 - prefixLen(cfg.IPv4Prefix, DefaultIPv4Prefix, 32))
	bits6 := prefixLen(cfg.IPv6Prefix, DefaultIPv6Prefix, 128)
	l.mask6 = key{
		hi: ^(math.MaxUint64 >> min(bits6, 64)),
		lo: ^(math.MaxUint64 >> max(bits6-64, 0)),
	}
	maxTracked := cfg.MaxTracked
	if maxTracked <= 0 {
		maxTracked = DefaultMaxTracked
	}
	l.shards = make([]shard, shardCount(maxTracked))
	for i := range l.shards {
		l.shards[i].init(maxTracked / len(l.shards))
	}
	l.seed = rand.Uint64()
	l.epoch = l.now()
	return l
}

// prefixLen returns bits, or def when bits <= 0, at most limit.
func prefixLen(bits, def, limit int) int {
	if bits <= 0 {
		return def
	}
	return min(bits, limit)
}

// shardCount is a power of two, about four shards per CPU, at least 16,
// at most 256, and never more than maxTracked (each shard tracks at least
// one prefix, and all together at most maxTracked).
func shardCount(maxTracked int) int {
	n := 16
	for n < 4*runtime.GOMAXPROCS(0) && n < 256 {
		n *= 2
	}
	for n > maxTracked {
		n /= 2
	}
	return n
}

// Check counts one UDP query from addr and says whether to answer it,
// slip it or drop it. IPv4-mapped IPv6 addresses count as IPv4. A query
// over TCP has a proven source and should not be checked. Check does not
// allocate for a prefix it already tracks.
func (l *Limiter) Check(addr netip.Addr) Action {
	if l == nil {
		return Allow
	}
	return l.cur.Load().check(addr)
}

func (l *limits) check(addr netip.Addr) Action {
	if l.shards == nil {
		return Allow
	}
	k := l.keyOf(addr)
	now := int64(l.now().Sub(l.epoch))
	return l.shards[k.hash(l.seed)&uint64(len(l.shards)-1)].check(l, k, now)
}

// Enabled reports whether l limits anything. A disabled Limiter (nil, or
// with no rate) allows every query and keeps no state, so asking it is
// free of effects.
func (l *Limiter) Enabled() bool { return l != nil && l.cur.Load().shards != nil }

// Stats returns the counters since New or the last Reconfigure. They are
// read one by one, not as a single snapshot.
func (l *Limiter) Stats() Stats {
	var s Stats
	if l == nil {
		return s
	}
	shards := l.cur.Load().shards
	for i := range shards {
		sh := &shards[i]
		s.Tracked += int(sh.tracked.Load())
		s.Allowed += sh.allowed.Load()
		s.Slipped += sh.slipped.Load()
		s.Dropped += sh.dropped.Load()
	}
	return s
}
