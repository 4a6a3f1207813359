package forward

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the forwarders' per-upstream state to Prometheus, read
// at scrape time from Upstreams, so the query path pays nothing for it.
// Every series exists from the first scrape (counters at 0), so rates and
// alerts on them work from the start.
type collector struct {
	current                                func() []*Forwarder
	healthy, rtt, failures, ignored        *prometheus.Desc
	case0x20, caseMismatches, serverCookie *prometheus.Desc
}

// Collector returns a Prometheus collector of the forwarder's upstreams
// (see NewCollector). Register it on the daemon's registry.
func (f *Forwarder) Collector() prometheus.Collector {
	return NewCollector(func() []*Forwarder { return []*Forwarder{f} })
}

// NewCollector returns a Prometheus collector of the upstreams of the
// forwarders current returns at each scrape, labelled by upstream and by
// group (the zone each forwarder serves): health, smoothed RTT, failed
// attempts, ignored replies (forged, stale or malformed: alert on any rate
// of them), 0x20 state and case mismatches, and whether a server cookie is
// held. Reading the forwarders at scrape time lets one registered
// collector follow a resolver whose forwarders are replaced on reload.
func NewCollector(current func() []*Forwarder) prometheus.Collector {
	labels := []string{"upstream", "group"}
	return &collector{
		current: current,
		healthy: prometheus.NewDesc("shardns_upstream_healthy",
			"1 while the upstream is healthy, 0 after repeated failures until a probe succeeds.", labels, nil),
		rtt: prometheus.NewDesc("shardns_upstream_rtt_seconds",
			"Smoothed round-trip time of the upstream.", labels, nil),
		failures: prometheus.NewDesc("shardns_upstream_failures_total",
			"Failed attempts (timeouts, network errors, bad answers) at the upstream.", labels, nil),
		ignored: prometheus.NewDesc("shardns_upstream_ignored_replies_total",
			"Datagrams or messages from the upstream's address that answered no query sent: wrong ID, opcode or question, another client cookie, or unparsable. Forged replies land here; any sustained rate deserves a look.", labels, nil),
		case0x20: prometheus.NewDesc("shardns_upstream_0x20",
			"1 while names sent to the upstream over UDP get random case (0x20); 0 for TCP and TLS upstreams, and once the upstream was seen not to keep case.", labels, nil),
		caseMismatches: prometheus.NewDesc("shardns_upstream_case_mismatches_total",
			"Replies that matched a query but for the case of the name, not taken as answers (the query was sent again without 0x20).", labels, nil),
		serverCookie: prometheus.NewDesc("shardns_upstream_server_cookie",
			"1 once the upstream has sent a DNS server cookie (RFC 7873) that queries to it carry.", labels, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.healthy
	ch <- c.rtt
	ch <- c.failures
	ch <- c.ignored
	ch <- c.case0x20
	ch <- c.caseMismatches
	ch <- c.serverCookie
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.current() {
		g := f.Group()
		for _, u := range f.Upstreams() {
			ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, b2f(u.Healthy), u.Address, g)
			ch <- prometheus.MustNewConstMetric(c.rtt, prometheus.GaugeValue, u.RTT.Seconds(), u.Address, g)
			ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(u.TotalFailures), u.Address, g)
			ch <- prometheus.MustNewConstMetric(c.ignored, prometheus.CounterValue, float64(u.Ignored), u.Address, g)
			ch <- prometheus.MustNewConstMetric(c.case0x20, prometheus.GaugeValue, b2f(u.Case0x20), u.Address, g)
			ch <- prometheus.MustNewConstMetric(c.caseMismatches, prometheus.CounterValue, float64(u.CaseMismatches), u.Address, g)
			ch <- prometheus.MustNewConstMetric(c.serverCookie, prometheus.GaugeValue, b2f(u.ServerCookie), u.Address, g)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
