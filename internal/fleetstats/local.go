package fleetstats

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultWindow is the span Local's rates and latency quantiles cover
// when LocalConfig.Window is 0.
const DefaultWindow = time.Minute

// localSteps is how many readings a window holds: Run takes one every
// Window/localSteps, so the window a read covers is within one step of
// Window.
const localSteps = 12

// L1 is the in-process cache as Local reads it (cache.Memory).
type L1 interface {
	Len() int
	Bytes() int64
	Evictions() uint64
}

// LocalConfig configures a Local.
type LocalConfig struct {
	// ID names this process (empty: DefaultID, hostname:pid).
	ID string
	// Kind is "dnsd" or "cacheapi".
	Kind string
	// Gatherer holds the lookup chain's metrics (lookup.Chain.Gatherer;
	// nil: every count reads 0).
	Gatherer prometheus.Gatherer
	// L1 is the in-process cache; nil when there is none (-l1 0).
	L1 L1
	// L1MaxEntries and L1MaxBytes are its bounds, as configured.
	L1MaxEntries int
	L1MaxBytes   int64
	// Window is the span of the rates and quantiles (0: DefaultWindow).
	Window time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Process is what one frontend process reports of itself: its in-process
// cache, and its lookups. Counters count since the process started; the
// rates, the recent hit ratio and the latency quantiles cover the last
// WindowSeconds.
type Process struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	StartedAt time.Time `json:"started_at"`
	// L1 is the in-process cache; null when the process runs without one.
	L1 *L1Stats `json:"l1"`

	// Counts are since the start.
	Counts

	// WindowSeconds is the span the numbers below cover: about a minute,
	// less just after the start.
	WindowSeconds float64 `json:"window_seconds"`
	// RecentHitRatio is the hit ratio of the window; null when the window
	// saw no query.
	RecentHitRatio *float64 `json:"recent_hit_ratio"`
	QPS            float64  `json:"qps"`
	P50Ms          float64  `json:"p50_ms"`
	P90Ms          float64  `json:"p90_ms"`
	P99Ms          float64  `json:"p99_ms"`
}

// L1Stats is the in-process cache's size and churn.
type L1Stats struct {
	Entries    int64  `json:"entries"`
	Bytes      int64  `json:"bytes"`
	MaxEntries int64  `json:"max_entries"`
	MaxBytes   int64  `json:"max_bytes"`
	Evictions  uint64 `json:"evictions"` // entries pushed out by a bound since the start
}

// Local reports one process's own numbers (Process) from its lookup
// metrics and its L1, with no Redis: what /stats shows of a frontend
// that has no fleet to publish to. Its rates and quantiles are the
// difference between the current reading and one about Window old, of
// the readings Run keeps; the histogram is the lookup chain's own
// Prometheus histogram, so the quantiles are estimated as Prometheus's
// histogram_quantile does.
type Local struct {
	cfg     LocalConfig
	started time.Time

	mu      sync.Mutex
	samples []reading // oldest first; samples[0] is the window's base
}

// NewLocal returns a Local whose window starts now.
func NewLocal(cfg LocalConfig) *Local {
	if cfg.ID == "" {
		cfg.ID = DefaultID()
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.NewRegistry()
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	now := cfg.Now()
	return &Local{cfg: cfg, started: now, samples: []reading{{at: now}}}
}

// Step is the time between the readings Run takes.
func (l *Local) Step() time.Duration { return l.cfg.Window / localSteps }

// Run takes a reading every Step until ctx is done, so that a read
// covers about Window whenever it comes.
func (l *Local) Run(ctx context.Context) {
	t := time.NewTicker(l.Step())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = l.Sample()
		}
	}
}

// Sample takes a reading and keeps it, dropping those the window no
// longer needs. The error is Gather's; what it did gather is kept.
func (l *Local) Sample() error {
	cur, err := gather(l.cfg.Gatherer, l.cfg.Now())
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keep(cur)
	return err
}

// keep adds cur when the last kept reading is a step old, and drops the
// readings older than the window's base: the newest at or before
// cur.at-Window. l.mu is held.
func (l *Local) keep(cur reading) {
	if last := l.samples[len(l.samples)-1]; cur.at.Sub(last.at) >= l.Step() {
		l.samples = append(l.samples, cur)
	}
	start := cur.at.Add(-l.cfg.Window)
	drop := 0
	for drop+1 < len(l.samples) && !l.samples[drop+1].at.After(start) {
		drop++
	}
	l.samples = append(l.samples[:0], l.samples[drop:]...)
}

// Read returns the process's numbers now. The error is Gather's: the
// numbers are then what it did gather.
func (l *Local) Read(context.Context) (Process, error) {
	cur, err := gather(l.cfg.Gatherer, l.cfg.Now())
	l.mu.Lock()
	l.keep(cur)
	base := l.samples[0]
	kind := l.cfg.Kind
	l.mu.Unlock()
	if base.at.Equal(cur.at) || cur.queries() < base.queries() {
		base = reading{at: l.started} // the only reading, or the counters were reset
	}
	p := Process{
		ID: l.cfg.ID, Kind: kind, StartedAt: l.started.UTC(),
		Counts: Counts{
			Queries: wholeCount(cur.queries()), L1Hits: wholeCount(cur.l1), RedisHits: wholeCount(cur.redis),
			Misses: wholeCount(cur.resolver), Stale: wholeCount(cur.stale), Errors: wholeCount(cur.failures),
		},
	}
	p.setHitRatio()
	if dt := cur.at.Sub(base.at).Seconds(); dt > 0 {
		p.WindowSeconds = dt
		p.QPS = (cur.queries() - base.queries()) / dt
	}
	p.RecentHitRatio = ratio(wholeCount(cur.l1+cur.redis-base.l1-base.redis), wholeCount(cur.queries()-base.queries()))
	win := cur.hist.since(base.hist)
	p.P50Ms = 1000 * win.quantile(0.50)
	p.P90Ms = 1000 * win.quantile(0.90)
	p.P99Ms = 1000 * win.quantile(0.99)
	if l.cfg.L1 != nil {
		p.L1 = &L1Stats{
			Entries: int64(l.cfg.L1.Len()), Bytes: l.cfg.L1.Bytes(), Evictions: l.cfg.L1.Evictions(),
			MaxEntries: int64(l.cfg.L1MaxEntries), MaxBytes: l.cfg.L1MaxBytes,
		}
	}
	return p, err
}

// wholeCount is a counter's value as a whole number, 0 for anything
// negative or not a number.
func wholeCount(v float64) uint64 {
	if !(v > 0) {
		return 0
	}
	return uint64(min(v+0.5, 1<<62))
}

// SetKind names the kind of process ("dnsd", "cacheapi") Read reports.
func (l *Local) SetKind(kind string) {
	l.mu.Lock()
	l.cfg.Kind = kind
	l.mu.Unlock()
}

// Sources is what a frontend's /stats reads: the fleet of its Redis tier
// (nil without Redis) and the process itself (nil: not reported).
type Sources struct {
	Fleet *Reader
	Local *Local
}
