package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/dnsd/cookie"
)

// metrics count what dnsd did with each message. They are created per
// Server and registered on the registry the caller passes in.
type metrics struct {
	dropped   *prometheus.CounterVec // by reason
	refused   prometheus.Counter
	slipped   prometheus.Counter
	truncated prometheus.Counter
	cookies   *prometheus.CounterVec // by verdict
	queries   *queryCounters         // by qtype, proto and rcode

	// byCookie holds cookies' series, one per verdict, made up front.
	byCookie [len(cookie.Verdicts) + 1]prometheus.Counter
}

// cookie returns the cookies series of verdict v.
func (m *metrics) cookie(v cookie.Verdict) prometheus.Counter { return m.byCookie[v] }

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "dropped_total",
			Help: "Messages not answered, by reason (malformed, rate_limit).",
		}, []string{"reason"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "acl_refused_total",
			Help: "Queries from clients outside -allow, answered REFUSED with EDE 18.",
		}),
		slipped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "rate_limit_slipped_total",
			Help: "Over-limit UDP queries answered empty with TC=1.",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "truncated_total",
			Help: "UDP replies cut to the client's size with TC=1.",
		}),
		cookies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "cookies_total",
			Help: "Queries with a COOKIE option, by what it held: client_only, valid, renewed (valid, replaced in the reply), invalid, expired, future (the last three get BADCOOKIE over UDP), malformed (FORMERR).",
		}, []string{"result"}),
	}
	m.queries = newQueryCounters()
	for _, v := range cookie.Verdicts {
		m.byCookie[v] = m.cookies.WithLabelValues(v.String())
	}
	if reg != nil {
		reg.MustRegister(m.dropped, m.refused, m.slipped, m.truncated, m.cookies, m.queries.vec, newRepliesByRcode(m.queries))
	}
	return m
}
