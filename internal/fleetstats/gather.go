package fleetstats

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The lookup chain's metrics a Publisher reads (internal/lookup/metrics.go).
const (
	MetricAnswers  = "shardns_lookup_answers_total"    // counter by source
	MetricFailures = "shardns_lookup_failures_total"   // counter by reason
	MetricDuration = "shardns_lookup_duration_seconds" // histogram by source
)

// The answer sources of MetricAnswers (lookup.Source values).
const (
	sourceL1       = "l1"
	sourceRedis    = "redis"
	sourceStale    = "stale"
	sourceResolver = "resolver"
)

// bucket is one cumulative histogram bucket.
type bucket struct {
	upper float64 // upper bound, seconds
	count float64 // observations at or below upper
}

// histogram is the duration histogram summed over all its label sets.
type histogram struct {
	buckets []bucket // finite upper bounds, ascending
	count   float64  // all observations, the +Inf bucket included
}

// reading is one read of the chain's metrics at a time.
type reading struct {
	at                                  time.Time
	l1, redis, stale, resolver, answers float64
	failures                            float64
	hist                                histogram
}

func (r reading) queries() float64 { return r.answers + r.failures }

// gather reads the chain's counters from g. A metric absent from g (no
// lookup yet) reads as zero. An error of Gather is returned along with what
// it did gather.
func gather(g prometheus.Gatherer, at time.Time) (reading, error) {
	r := reading{at: at}
	mfs, err := g.Gather()
	if err != nil {
		err = fmt.Errorf("fleetstats: gather: %w", err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case MetricAnswers:
			for _, m := range mf.GetMetric() {
				v := m.GetCounter().GetValue()
				r.answers += v
				switch label(m, "source") {
				case sourceL1:
					r.l1 += v
				case sourceRedis:
					r.redis += v
				case sourceStale:
					r.stale += v
				case sourceResolver:
					r.resolver += v
				}
			}
		case MetricFailures:
			for _, m := range mf.GetMetric() {
				r.failures += m.GetCounter().GetValue()
			}
		case MetricDuration:
			r.hist = mergeHistograms(mf.GetMetric())
		}
	}
	return r, err
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// mergeHistograms sums the classic buckets of every label set by upper
// bound.
func mergeHistograms(ms []*dto.Metric) histogram {
	var h histogram
	byUpper := map[float64]float64{}
	for _, m := range ms {
		hm := m.GetHistogram()
		if hm == nil {
			continue
		}
		h.count += float64(hm.GetSampleCount())
		for _, b := range hm.GetBucket() {
			if math.IsInf(b.GetUpperBound(), +1) || math.IsNaN(b.GetUpperBound()) {
				continue
			}
			byUpper[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	for u, c := range byUpper {
		h.buckets = append(h.buckets, bucket{upper: u, count: c})
	}
	slices.SortFunc(h.buckets, func(a, b bucket) int { return cmp.Compare(a.upper, b.upper) })
	return h
}

// since returns the observations made after prev. When a count went down
// (the histogram was reset) it returns h whole.
func (h histogram) since(prev histogram) histogram {
	if h.count < prev.count {
		return h
	}
	old := make(map[float64]float64, len(prev.buckets))
	for _, b := range prev.buckets {
		old[b.upper] = b.count
	}
	d := histogram{count: h.count - prev.count, buckets: make([]bucket, len(h.buckets))}
	for i, b := range h.buckets {
		if b.count < old[b.upper] {
			return h
		}
		d.buckets[i] = bucket{upper: b.upper, count: b.count - old[b.upper]}
	}
	return d
}

// quantile estimates the q-quantile (0 ≤ q ≤ 1) of h in seconds the way
// Prometheus's histogram_quantile does: it finds the bucket holding the
// rank q×count and interpolates linearly inside it, the first bucket
// starting at 0. A rank in the +Inf bucket answers the highest finite
// bound. An empty histogram answers 0.
func (h histogram) quantile(q float64) float64 {
	if h.count <= 0 || len(h.buckets) == 0 || math.IsNaN(q) {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * h.count
	lower, below := 0.0, 0.0
	for _, b := range h.buckets {
		if b.count >= rank && b.count > below {
			if b.upper <= 0 {
				return b.upper
			}
			return lower + (b.upper-lower)*(rank-below)/(b.count-below)
		}
		lower, below = b.upper, b.count
	}
	return h.buckets[len(h.buckets)-1].upper
}
