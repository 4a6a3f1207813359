package lookup

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the chain's Prometheus collectors. They are created per chain
// and registered on the registry the caller passes in.
type metrics struct {
	answers     *prometheus.CounterVec   // by source
	failures    *prometheus.CounterVec   // by reason
	duration    *prometheus.HistogramVec // by source
	cacheErrors *prometheus.CounterVec   // by operation
	coalesced   prometheus.Counter
	resolves    prometheus.Counter
	failCached  prometheus.Counter
	prefetch    *prometheus.CounterVec // by result

	// The series of hits (sources l1 and redis), looked up once, on the
	// first hit, so that a hit does not hash label values.
	hitOnce     [2]sync.Once
	hitAnswers  [2]prometheus.Counter
	hitDuration [2]prometheus.Observer
}

// hit returns the answers counter and duration observer of a cache
// source (SourceL1 or SourceRedis).
func (m *metrics) hit(src Source) (prometheus.Counter, prometheus.Observer) {
	i := 0
	if src == SourceRedis {
		i = 1
	}
	m.hitOnce[i].Do(func() {
		m.hitAnswers[i] = m.answers.WithLabelValues(string(src))
		m.hitDuration[i] = m.duration.WithLabelValues(string(src))
	})
	return m.hitAnswers[i], m.hitDuration[i]
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "lookup", Name: "answers_total",
			Help: "Answers given, by source (l1, redis, stale, resolver).",
		}, []string{"source"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "lookup", Name: "failures_total",
			Help: "Lookups with no answer, by reason (timeout, resolver).",
		}, []string{"reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "shardns", Subsystem: "lookup", Name: "duration_seconds",
			Help:    "Time to answer a lookup, by source.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2},
		}, []string{"source"}),
		cacheErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "cache", Name: "errors_total",
			Help: "Cache reads and writes that failed (timeouts, shards down); each read counts as a miss.",
		}, []string{"op"}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "lookup", Name: "coalesced_total",
			Help: "Misses that waited for an identical lookup already under way.",
		}),
		resolves: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "lookup", Name: "resolver_calls_total",
			Help: "Calls made to the resolver.",
		}),
		failCached: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "lookup", Name: "failure_cache_hits_total",
			Help: "Lookups failed at once because the resolver failed the same question moments ago.",
		}),
		prefetch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "lookup", Name: "prefetch_total",
			Help: "Background refreshes of popular entries near expiry, by result (refreshed, failed, busy).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.answers, m.failures, m.duration, m.cacheErrors, m.coalesced, m.resolves, m.failCached, m.prefetch)
	}
	return m
}

// count counts an answer from res.Source that took the given seconds.
func (m *metrics) count(res *Result, seconds float64) {
	if res.Source == SourceL1 || res.Source == SourceRedis {
		answers, duration := m.hit(res.Source)
		answers.Inc()
		duration.Observe(seconds)
		return
	}
	src := string(res.Source)
	m.answers.WithLabelValues(src).Inc()
	m.duration.WithLabelValues(src).Observe(seconds)
}
