package forward

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the forwarder's per-upstream state to Prometheus, read
// at scrape time from Upstreams, so the query path pays nothing for it.
type collector struct {
	f                                   *Forwarder
	healthy, rtt, failures, ignoredDesc *prometheus.Desc
}

// Collector returns a Prometheus collector of the forwarder's upstreams:
// health, smoothed RTT, failed attempts and ignored (mismatched or
// unparsable) replies. Register it on the daemon's registry.
func (f *Forwarder) Collector() prometheus.Collector {
	labels := []string{"upstream"}
	return &collector{
		f: f,
		healthy: prometheus.NewDesc("shardns_upstream_healthy",
			"1 while the upstream is healthy, 0 after repeated failures until a probe succeeds.", labels, nil),
		rtt: prometheus.NewDesc("shardns_upstream_rtt_seconds",
			"Smoothed round-trip time of the upstream.", labels, nil),
		failures: prometheus.NewDesc("shardns_upstream_failures_total",
			"Failed attempts (timeouts, network errors, bad answers) at the upstream.", labels, nil),
		ignoredDesc: prometheus.NewDesc("shardns_upstream_ignored_replies_total",
			"Replies dropped because their ID or question did not match, or they did not parse.", labels, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.healthy
	ch <- c.rtt
	ch <- c.failures
	ch <- c.ignoredDesc
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, u := range c.f.Upstreams() {
		h := 0.0
		if u.Healthy {
			h = 1
		}
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, h, u.Address)
		ch <- prometheus.MustNewConstMetric(c.rtt, prometheus.GaugeValue, u.RTT.Seconds(), u.Address)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(u.TotalFailures), u.Address)
		ch <- prometheus.MustNewConstMetric(c.ignoredDesc, prometheus.CounterValue, float64(u.Ignored), u.Address)
	}
}
