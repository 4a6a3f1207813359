package resolve

import (
	"github.com/prometheus/client_golang/prometheus"
)

// scrubCollector exports the resolver's scrub counts, read at scrape time,
// so the query path pays only for the atomic additions.
type scrubCollector struct {
	r                *Resolver
	records, answers *prometheus.Desc
}

// Collector returns a Prometheus collector of the records the resolver
// scrubbed from answers: shardns_scrubbed_records_total by section (answer,
// authority, additional) and shardns_scrubbed_answers_total. Register it on
// the daemon's registry.
func (r *Resolver) Collector() prometheus.Collector {
	return &scrubCollector{
		r: r,
		records: prometheus.NewDesc("shardns_scrubbed_records_total",
			"Records dropped from answers, local or upstream, before caching because they were unrelated to the question (off its CNAME/DNAME chain, another zone's SOA or NS, addresses no kept record names).",
			[]string{"section"}, nil),
		answers: prometheus.NewDesc("shardns_scrubbed_answers_total",
			"Answers from which at least one record was scrubbed.", nil, nil),
	}
}

func (c *scrubCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.records
	ch <- c.answers
}

func (c *scrubCollector) Collect(ch chan<- prometheus.Metric) {
	s := &c.r.scrubbed
	ch <- prometheus.MustNewConstMetric(c.records, prometheus.CounterValue, float64(s.answer.Load()), "answer")
	ch <- prometheus.MustNewConstMetric(c.records, prometheus.CounterValue, float64(s.authority.Load()), "authority")
	ch <- prometheus.MustNewConstMetric(c.records, prometheus.CounterValue, float64(s.additional.Load()), "additional")
	ch <- prometheus.MustNewConstMetric(c.answers, prometheus.CounterValue, float64(s.answers.Load()))
}
