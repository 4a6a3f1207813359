package lookup

import "github.com/prometheus/client_golang/prometheus"

// Gatherer returns the chain's own answer, failure and duration metrics
// (shardns_lookup_answers_total, shardns_lookup_failures_total,
// shardns_lookup_duration_seconds) on a registry of their own, whatever
// registry the chain was built with or none: what a daemon reports of its
// own lookups (fleetstats) reads them there, apart from every other
// collector of the process. Each call gathers the live values.
func (c *Chain) Gatherer() prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.metrics.answers, c.metrics.failures, c.metrics.duration)
	return reg
}
