package recurse

import "github.com/prometheus/client_golang/prometheus"

// The limits a resolution can hit, the label values of
// shardns_recurse_limit_total.
const (
	LimitReferrals = "referrals"   // referrals followed in one resolution
	LimitNSLookups = "ns_lookups"  // name server names resolved for one delegation
	LimitCNAMEs    = "cname_chain" // CNAME and DNAME links in one answer
	LimitQueries   = "queries"     // queries sent for one resolution
	LimitTime      = "time"        // the resolution's time budget
	LimitDepth     = "depth"       // nested lookups of name server addresses
)

// newLimitCounter returns shardns_recurse_limit_total with every limit's
// series at zero.
func newLimitCounter() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shardns_recurse_limit_total",
		Help: "Iterative resolutions stopped (answered SERVFAIL) because they hit a limit against loops and amplification: referrals, ns_lookups, cname_chain, queries, time, depth.",
	}, []string{"limit"})
	for _, l := range []string{LimitReferrals, LimitNSLookups, LimitCNAMEs, LimitQueries, LimitTime, LimitDepth} {
		c.WithLabelValues(l)
	}
	return c
}
