package server_test

import (
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/dnsd/acl"
	"github.com/shardns/shardns/dnsd/server"
)

// querySeries returns shardns_dns_queries_total's series as
// "qtype/proto/rcode" → count.
func querySeries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	return series(t, reg, "shardns_dns_queries_total")
}

// series returns the series of metric name as their label values joined
// by "/" (in the order qtype, proto, rcode, as far as the metric has them)
// → value.
func series(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			var key []string
			for _, k := range []string{"qtype", "proto", "rcode"} {
				if v, ok := l[k]; ok {
					key = append(key, v)
				}
			}
			out[strings.Join(key, "/")] = m.GetCounter().GetValue()
		}
	}
	return out
}

// Every reply is counted once by its question's type (common types by
// name, the rest "other"), the protocol and its RCODE: answers and
// NXDOMAIN from the cache and the resolver, ACL refusals, refused types
// and FORMERR for what does not parse; nothing else is counted.
func TestQueriesByTypeProtoRcode(t *testing.T) {
	a, err := acl.Parse("127.0.0.1/32")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := newEdgeSetup(t, options{}, server.Config{ACL: a, Registerer: reg})
	ask := func(network string, q *dns.Msg, want int) {
		t.Helper()
		if r := exchange(t, network, s.addr(network), q); r.Rcode != want {
			t.Fatalf("%s %s: rcode %s, want %s", network, q.Question[0].String(), dns.RcodeToString[r.Rcode], dns.RcodeToString[want])
		}
	}
	for i := range 3 { // a miss, then two L1 hits answered inline
		ask("udp", query("www.example.com.", dns.TypeA, uint16(0x7000+i)), dns.RcodeSuccess)
	}
	ask("tcp", query("www.example.com.", dns.TypeAAAA, 0x7010), dns.RcodeSuccess)
	ask("udp", query("nx1.example.com.", dns.TypeA, 0x7011), dns.RcodeNameError)
	ask("udp", query("www.example.com.", dns.TypeSPF, 0x7012), dns.RcodeSuccess)
	ask("udp", withEDNS(query(zone, dns.TypeAXFR, 0x7013)), dns.RcodeRefused)
	r, _, err := clientFrom("udp", net.IPv4(127, 0, 0, 2)).Exchange(query("www.example.com.", dns.TypeMX, 0x7014), s.udp)
	if err != nil || r.Rcode != dns.RcodeRefused {
		t.Fatalf("from outside the ACL: %v %v", r, err)
	}
	garbage := append(pack(t, query("www.example.com.", dns.TypeA, 0x7015))[:12], 0xff, 0xff)
	if reply := rawUDP(t, s.udp, garbage, 2*time.Second); len(reply) < 4 || reply[3]&0x0f != dns.RcodeFormatError {
		t.Fatalf("garbage: reply %x, want FORMERR", reply)
	}
	rawUDP(t, s.udp, []byte{1, 2, 3}, 200*time.Millisecond) // no header: dropped, not counted

	want := map[string]float64{
		"A/udp/NOERROR":     3,
		"AAAA/tcp/NOERROR":  1,
		"A/udp/NXDOMAIN":    1,
		"other/udp/NOERROR": 1, // SPF
		"other/udp/REFUSED": 1, // AXFR
		"MX/udp/REFUSED":    1, // outside the ACL
		"other/udp/FORMERR": 1,
	}
	got := querySeries(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("queries_total{%s} = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series queries_total{%s} = %v", k, got[k])
		}
	}
	if t.Failed() {
		t.Logf("series: %v", got)
	}
	// shardns_dns_replies_total is their sum by RCODE.
	replies := series(t, reg, "shardns_dns_replies_total")
	if want := map[string]float64{"NOERROR": 5, "NXDOMAIN": 1, "REFUSED": 2, "FORMERR": 1}; !maps.Equal(replies, want) {
		t.Errorf("replies_total %v, want %v", replies, want)
	}
}

// The label values stay within their bounds whatever the traffic: the
// series a flood of every query type can make is bounded.
func TestQueryLabelsBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newEdgeSetup(t, options{}, server.Config{Registerer: reg})
	c := &dns.Client{Timeout: clientTimeout}
	for qt := uint16(1); qt < 300; qt += 7 {
		_, _, _ = c.Exchange(query("www.example.com.", qt, qt), s.udp)
	}
	qtypes := map[string]bool{}
	for k := range querySeries(t, reg) {
		qtypes[strings.Split(k, "/")[0]] = true
	}
	if len(qtypes) > 17 || !qtypes["other"] || !qtypes["A"] {
		t.Errorf("qtype label values %v: want A, other and at most 17 in all", qtypes)
	}
}
