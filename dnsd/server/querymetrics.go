package server

import (
	"strconv"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shardns/shardns/dnsd/transport"
)

// The label values of shardns_dns_queries_total, bounded: the query types
// clients commonly ask by name and "other" for the rest; the protocols a
// listener carries; the RCODEs a header holds (0-15) by name, BADCOOKIE
// (the one extended RCODE dnsd sends itself) and "other".
var (
	queryTypes = [...]uint16{
		dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeMX, dns.TypeNS, dns.TypePTR, dns.TypeSOA,
		dns.TypeSRV, dns.TypeTXT, dns.TypeHTTPS, dns.TypeSVCB, dns.TypeDS, dns.TypeDNSKEY,
		dns.TypeCAA, dns.TypeNAPTR, dns.TypeANY,
	}
	// protoNames are indexed by a proto.
	protoNames = [...]string{protoUDP: "udp", protoTCP: "tcp", protoDoT: "dot", protoDoH: "doh", protoDoQ: "doq"}
)

// proto is a protocol label of shardns_dns_queries_total.
type proto uint8

// The protocols; dot, doh and doq are for the encrypted listeners.
const (
	protoUDP proto = iota
	protoTCP
	protoDoT
	protoDoH
	protoDoQ
	numProtos
)

const (
	numQtypes  = len(queryTypes) + 1 // + "other"
	rcodeBad   = 16                  // BADCOOKIE's index
	rcodeOther = 17                  // any other extended RCODE
	numRcodes  = 18
)

// protoOf is the protocol a message came over, as its transport tells.
func protoOf(p transport.Peer) proto {
	switch {
	case p.Proto == transport.ProtoDoT:
		return protoDoT
	case p.Proto == transport.ProtoDoH:
		return protoDoH
	case p.Proto == transport.ProtoDoQ:
		return protoDoQ
	case p.TCP:
		return protoTCP
	}
	return protoUDP
}

// qtypeIndex is the label index of a query type: its place in queryTypes,
// or the last ("other").
func qtypeIndex(t uint16) int {
	switch t {
	case dns.TypeA:
		return 0
	case dns.TypeAAAA:
		return 1
	}
	for i, q := range queryTypes {
		if q == t {
			return i
		}
	}
	return numQtypes - 1
}

func qtypeName(i int) string {
	if i < len(queryTypes) {
		return dns.TypeToString[queryTypes[i]]
	}
	return "other"
}

// rcodeIndex is the label index of an RCODE (extended ones included).
func rcodeIndex(rc int) int {
	switch {
	case rc >= 0 && rc < 16:
		return rc
	case rc == dns.RcodeBadCookie:
		return rcodeBad
	}
	return rcodeOther
}

func rcodeName(i int) string {
	switch i {
	case rcodeBad:
		return dns.RcodeToString[dns.RcodeBadCookie]
	case rcodeOther:
		return "other"
	}
	if s, ok := dns.RcodeToString[i]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(i) // unassigned
}

// queryCounters is shardns_dns_queries_total with its series looked up
// once each, on first use, so that counting a reply neither hashes labels
// nor allocates: an array indexed by [qtype][proto][rcode]. Series never
// used are not exported.
type queryCounters struct {
	vec *prometheus.CounterVec
	c   [numQtypes][numProtos][numRcodes]atomic.Pointer[prometheus.Counter]
}

func newQueryCounters() *queryCounters {
	return &queryCounters{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "shardns", Subsystem: "dns", Name: "queries_total",
		Help: "Replies sent, by the question's type (the common types by name, the rest \"other\"), " +
			"the protocol it came over (udp, tcp) and the reply's RCODE; refusals, FORMERR and slipped replies included.",
	}, []string{"qtype", "proto", "rcode"})}
}

// inc counts one reply.
func (q *queryCounters) inc(qtype uint16, p proto, rcode int) {
	qi, ri := qtypeIndex(qtype), rcodeIndex(rcode)
	slot := &q.c[qi][p][ri]
	c := slot.Load()
	if c == nil {
		cc := q.vec.WithLabelValues(qtypeName(qi), protoNames[p], rcodeName(ri))
		slot.Store(&cc)
		c = &cc
	}
	(*c).Inc()
}

// countQuery counts the reply to m, whose question st holds as far as it
// was read, with its RCODE.
func (s *Server) countQuery(m *transport.Msg, st *msgState, rcode int) {
	s.metrics.queries.inc(st.qtype(), protoOf(m.From), rcode)
}

// qtype is the question's type as far as it was read: 0 (counted as
// "other") when the message did not parse.
func (st *msgState) qtype() uint16 {
	if st.q.Type != 0 {
		return st.q.Type
	}
	if st.r != nil && len(st.r.Question) > 0 {
		return st.r.Question[0].Qtype
	}
	return 0
}

// repliesByRcode is shardns_dns_replies_total{rcode}: the sums of
// shardns_dns_queries_total by RCODE, made at scrape time, so that a reply
// is counted once, in one series.
type repliesByRcode struct {
	q    *queryCounters
	desc *prometheus.Desc
}

func newRepliesByRcode(q *queryCounters) repliesByRcode {
	return repliesByRcode{q: q, desc: prometheus.NewDesc("shardns_dns_replies_total",
		"Replies sent, by RCODE (shardns_dns_queries_total summed over qtype and proto).", []string{"rcode"}, nil)}
}

// Describe sends the metric's description.
func (r repliesByRcode) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

// Collect sends one series per RCODE some reply had.
func (r repliesByRcode) Collect(ch chan<- prometheus.Metric) {
	var sum [numRcodes]float64
	var seen [numRcodes]bool
	var m dto.Metric
	for qi := range r.q.c {
		for p := range r.q.c[qi] {
			for ri := range r.q.c[qi][p] {
				c := r.q.c[qi][p][ri].Load()
				if c == nil {
					continue
				}
				m.Reset()
				if (*c).Write(&m) == nil {
					sum[ri] += m.GetCounter().GetValue()
					seen[ri] = true
				}
			}
		}
	}
	for ri, ok := range seen {
		if ok {
			ch <- prometheus.MustNewConstMetric(r.desc, prometheus.CounterValue, sum[ri], rcodeName(ri))
		}
	}
}
