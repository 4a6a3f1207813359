package dnsmsg

import (
	"testing"

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
