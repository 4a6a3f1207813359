package dnsmsg

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// benchStored is a stored answer of two A records, as a hit replays it.
func benchStored(b *testing.B) Stored {
	b.Helper()
	m := answer(b, "www.example.com.", dns.TypeA, dns.RcodeSuccess,
		[]string{"www.example.com. 300 IN A 192.0.2.1", "www.example.com. 300 IN A 192.0.2.2"}, nil)
	s, err := Prepare(m, 300, 0, true)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchCommonQuery is an EDNS query for www.example.com A read with
// ParseCommon, and the name as the client spelled it.
func benchCommonQuery(b *testing.B) (*Query, []byte) {
	b.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	m.SetEdns0(1232, false)
	req, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	q := new(Query)
	_, end, ok := ParseCommon(req, q, nil)
	if !ok {
		b.Fatal("ParseCommon refused the query")
	}
	return q, req[headerSize:end]
}

// BenchmarkAppendReplyName is the patching of a stored answer into the
// reply to an EDNS query without a cookie: a cache hit's work in dnsmsg.
func BenchmarkAppendReplyName(b *testing.B) {
	s := benchStored(b)
	q, qname := benchCommonQuery(b)
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendReplyName(dst[:0], s, q, qname, ReplyOptions{Age: 7})
	}
}

// BenchmarkAppendReplyNameCookie is BenchmarkAppendReplyName for a query
// with a cookie: the reply's OPT record carries a COOKIE option.
func BenchmarkAppendReplyNameCookie(b *testing.B) {
	s := benchStored(b)
	q, qname := benchCommonQuery(b)
	cookie := []byte("0123456789abcdefghijklmn")
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendReplyName(dst[:0], s, q, qname, ReplyOptions{Age: 7, Cookie: cookie})
	}
}

// benchAnswer is a resolver's packed answer for www.example.com A: two
// addresses, an NS in the authority section and an OPT record.
func benchAnswer(b *testing.B) []byte {
	b.Helper()
	m := answer(b, "www.example.com.", dns.TypeA, dns.RcodeSuccess,
		[]string{"www.example.com. 300 IN A 192.0.2.1", "www.example.com. 300 IN A 192.0.2.2"},
		[]string{"example.com. 3600 IN NS ns1.example.com."})
	m.SetEdns0(1232, false)
	m.Compress = true
	wire, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	return wire
}

// BenchmarkPrepareWire lays a resolver's answer out for the cache by
// walking the wire, as a miss does.
func BenchmarkPrepareWire(b *testing.B) {
	wire := benchAnswer(b)
	buf := make([]byte, len(wire))
	p := Policy{MaxTTL: 24 * time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, wire)
		if _, _, _, err := p.PrepareWire(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepareMsg is the same through dns.Msg: unpack, CacheTTL,
// Prepare.
func BenchmarkPrepareMsg(b *testing.B) {
	wire := benchAnswer(b)
	p := Policy{MaxTTL: 24 * time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			b.Fatal(err)
		}
		ttl, ok := p.CacheTTL(m)
		if _, err := Prepare(m, ttl, 0, ok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendUpstream packs a miss's upstream query from its Query.
func BenchmarkAppendUpstream(b *testing.B) {
	q, _ := benchCommonQuery(b)
	q.Name = "www.example.com."
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.AppendUpstream(nil, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpstreamMsg is the same query built and packed as a dns.Msg.
func BenchmarkUpstreamMsg(b *testing.B) {
	q, _ := benchCommonQuery(b)
	q.Name = "www.example.com."
	b.ReportAllocs()
	for b.Loop() {
		if _, err := upstreamMsg(q, 1).Pack(); err != nil {
			b.Fatal(err)
		}
	}
}
