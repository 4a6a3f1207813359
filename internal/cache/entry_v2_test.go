package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// testKey is a well-formed cache key for tests that need one.
const testKey = "dns:{www.example.com.}:A:IN"

// answerCase is a real answer laid out as the query path stores it, with
// the key it is stored under.
type answerCase struct {
	name  string
	key   string
	entry *Entry
	v2    bool // Encode should write version 2
}

func mustRR(tb testing.TB, s string) dns.RR {
	tb.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		tb.Fatalf("%s: %v", s, err)
	}
	return rr
}

// realAnswers builds answers the way the resolve step does: an upstream
// reply to the lowercased question, packed by dnsmsg.Prepare.
func realAnswers(tb testing.TB) []answerCase {
	tb.Helper()
	now := time.UnixMilli(1_790_000_000_123)
	type spec struct {
		name         string
		qname        string
		qtype        uint16
		qclass       uint16
		do, cd       bool
		rcode        int
		ad           bool
		answer, auth []string
		extra        []string
		stale        time.Duration
		v2           bool
	}
	soa := "example.com. 900 IN SOA ns1.example.com. hostmaster.example.com. 2026010100 7200 900 1209600 900"
	many := make([]string, 20)
	for i := range many {
		many[i] = fmt.Sprintf("pool.example.org. 150 IN A 192.0.2.%d", i+1)
	}
	specs := []spec{
		{name: "A", qname: "www.example.com.", qtype: dns.TypeA, answer: []string{"www.example.com. 300 IN A 192.0.2.1"}, stale: 24 * time.Hour, v2: true},
		{name: "A, 4 records", qname: "pool.ntp.example.org.", qtype: dns.TypeA, answer: []string{
			"pool.ntp.example.org. 150 IN A 192.0.2.1", "pool.ntp.example.org. 150 IN A 192.0.2.2",
			"pool.ntp.example.org. 150 IN A 192.0.2.3", "pool.ntp.example.org. 150 IN A 192.0.2.4"}, stale: time.Hour, v2: true},
		{name: "AAAA", qname: "www.example.com.", qtype: dns.TypeAAAA, answer: []string{
			"www.example.com. 300 IN AAAA 2001:db8::1", "www.example.com. 300 IN AAAA 2001:db8::2"}, v2: true},
		{name: "CNAME chain", qname: "www.shop.example.net.", qtype: dns.TypeA, answer: []string{
			"www.shop.example.net. 60 IN CNAME shop.cdn.example.net.",
			"shop.cdn.example.net. 60 IN CNAME edge7.cdn3.example.net.",
			"edge7.cdn3.example.net. 20 IN A 198.51.100.7", "edge7.cdn3.example.net. 20 IN A 198.51.100.8"}, stale: 1500 * time.Millisecond, v2: true},
		{name: "MX", qname: "example.com.", qtype: dns.TypeMX, answer: []string{
			"example.com. 3600 IN MX 10 mx1.example.com.", "example.com. 3600 IN MX 20 mx2.example.com.",
			"example.com. 3600 IN MX 30 mx3.example.net."},
			extra: []string{"mx1.example.com. 3600 IN A 192.0.2.25"}, stale: 90 * time.Second, v2: true},
		{name: "TXT", qname: "example.com.", qtype: dns.TypeTXT, answer: []string{
			`example.com. 3600 IN TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.example.net ~all"`,
			`example.com. 3600 IN TXT "site-verification=abc" "second string"`}, v2: true},
		{name: "NXDOMAIN + SOA", qname: "no-such-host.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			auth: []string{soa}, stale: 24 * time.Hour, v2: true},
		{name: "NODATA + SOA", qname: "www.example.com.", qtype: dns.TypeMX, auth: []string{soa}, v2: true},
		{name: "DO-keyed, signed", qname: "example.com.", qtype: dns.TypeA, do: true, ad: true, answer: []string{
			"example.com. 300 IN A 192.0.2.10",
			"example.com. 300 IN RRSIG A 13 2 300 20270101000000 20261201000000 12345 example.com. " +
				"oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3DTJXUAQ=="},
			stale: 24 * time.Hour, v2: true},
		{name: "DO and CD keyed", qname: "example.com.", qtype: dns.TypeA, do: true, cd: true, answer: []string{
			"example.com. 300 IN A 192.0.2.10"}, v2: true},
		{name: "SERVFAIL", qname: "broken.example.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, v2: true},
		{name: "20 records (full form)", qname: "pool.example.org.", qtype: dns.TypeA, answer: many, stale: time.Hour, v2: true},
		{name: "root NS", qname: ".", qtype: dns.TypeNS, answer: []string{". 518400 IN NS a.root-servers.net."}, v2: true},
		{name: "escaped name", qname: `a\.b\032c.example.`, qtype: dns.TypeA, answer: []string{`a\.b\032c.example. 60 IN A 192.0.2.3`}, v2: true},
		{name: "unknown type and class", qname: "x.example.", qtype: 65280, qclass: 3, answer: []string{`x.example. 60 CLASS3 TYPE65280 \# 2 abcd`}, v2: true},
		{name: "CHAOS TXT", qname: "version.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, answer: []string{`version.bind. 0 CH TXT "x"`}, v2: true},
		{name: "SRV", qname: "_sip._tcp.example.com.", qtype: dns.TypeSRV, answer: []string{
			"_sip._tcp.example.com. 300 IN SRV 10 60 5060 sip.example.com."}, v2: true},
		{name: "NAPTR", qname: "example.com.", qtype: dns.TypeNAPTR, answer: []string{
			`example.com. 300 IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.example.com.`}, v2: true},
		{name: "DS and DNSKEY", qname: "example.com.", qtype: dns.TypeDS, answer: []string{
			"example.com. 300 IN DS 12345 13 2 3490A6806D47F17A34C29E2CE80E8A999FFBE4BE0000000000000000000000AB",
			"example.com. 300 IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="}, v2: true},
		{name: "CAA, TLSA, SSHFP", qname: "example.com.", qtype: dns.TypeCAA, answer: []string{
			`example.com. 300 IN CAA 0 issue "ca.example.net"`,
			"example.com. 300 IN TLSA 3 1 1 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
			"example.com. 300 IN SSHFP 4 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"}, v2: true},
		{name: "HTTPS", qname: "example.com.", qtype: dns.TypeHTTPS, answer: []string{
			`example.com. 300 IN HTTPS 1 . alpn="h3,h2" ipv4hint="192.0.2.1"`}, v2: true},
		{name: "upper-case question", qname: "WWW.Example.COM.", qtype: dns.TypeA, answer: []string{"WWW.Example.COM. 300 IN A 192.0.2.1"}, v2: false},
	}
	var out []answerCase
	for _, s := range specs {
		m := new(dns.Msg)
		class := s.qclass
		if class == 0 {
			class = dns.ClassINET
		}
		m.Question = []dns.Question{{Name: s.qname, Qtype: s.qtype, Qclass: class}}
		m.Response, m.RecursionDesired, m.RecursionAvailable = true, true, true
		m.Rcode, m.AuthenticatedData, m.CheckingDisabled = s.rcode, s.ad, s.cd
		for _, r := range s.answer {
			m.Answer = append(m.Answer, mustRR(tb, r))
		}
		for _, r := range s.auth {
			m.Ns = append(m.Ns, mustRR(tb, r))
		}
		for _, r := range s.extra {
			m.Extra = append(m.Extra, mustRR(tb, r))
		}
		m.SetEdns0(dnsmsg.MaxUDPSize, s.do) // dropped by Prepare
		ttl := uint32(300)
		st, err := dnsmsg.Prepare(m, ttl, 0, true)
		if err != nil {
			tb.Fatalf("%s: %v", s.name, err)
		}
		e := &Entry{StoredAt: now, TTL: ttl, Offsets: st.Offsets, Msg: st.Msg}
		e.StaleUntil = e.Expires().Add(s.stale)
		out = append(out, answerCase{name: s.name, key: dnsmsg.Key(s.qname, s.qtype, class, s.do, s.cd), entry: e, v2: s.v2})
	}
	return out
}

func TestEntryV2RoundTrip(t *testing.T) {
	for _, c := range realAnswers(t) {
		b := c.entry.Encode()
		if got := b[0] == entryVersion; got != c.v2 {
			t.Errorf("%s: version %d written", c.name, b[0])
		}
		if len(b) > c.entry.Size() {
			t.Errorf("%s: %d bytes encoded, Size %d", c.name, len(b), c.entry.Size())
		}
		got, err := Decode(c.key, b)
		if err != nil {
			t.Fatalf("%s: Decode: %v", c.name, err)
		}
		if d := sameEntry(c.entry, got); d != "" {
			t.Errorf("%s: round trip: %s", c.name, d)
		}
		if c.entry.StaleUntil.UnixMilli() != got.StaleUntil.UnixMilli() || !got.Expires().Equal(c.entry.Expires()) {
			t.Errorf("%s: times differ", c.name)
		}
		// The replies made from both are the same.
		q := dnsmsg.Query{ID: 0x1234, Name: "wWw.Example.com.", RD: true, EDNS: true, DO: true}
		want := dnsmsg.AppendReply(nil, dnsmsg.Stored{Msg: c.entry.Msg, Offsets: c.entry.Offsets}, &q, dnsmsg.ReplyOptions{Age: 7})
		have := dnsmsg.AppendReply(nil, dnsmsg.Stored{Msg: got.Msg, Offsets: got.Offsets}, &q, dnsmsg.ReplyOptions{Age: 7})
		if !bytes.Equal(want, have) {
			t.Errorf("%s: replies differ", c.name)
		}
		// A version 1 value of the same entry, as an older process wrote
		// it, still decodes to the same entry.
		old, err := Decode(c.key, c.entry.appendV1(nil))
		if err != nil {
			t.Fatalf("%s: Decode version 1: %v", c.name, err)
		}
		if d := sameEntry(c.entry, old); d != "" {
			t.Errorf("%s: version 1: %s", c.name, d)
		}
		t.Logf("%-24s wire %4d  key %3d  v1 %4d  v2 %4d", c.name, len(c.entry.Msg), len(c.key), c.entry.Size(), len(b))
	}
}

// TestEntryV2Small checks the size of small answers with the default
// stale window: one A record fits Redis's embedded strings (44 bytes)
// with room to spare; two take 48 bytes, 4 of them the question tag.
func TestEntryV2Small(t *testing.T) {
	for _, c := range realAnswers(t) {
		if c.name != "A" {
			continue
		}
		if n := len(c.entry.Encode()); n > 44-12 {
			t.Errorf("one A record: %d bytes", n)
		}
		two := *c.entry
		m := new(dns.Msg)
		if err := m.Unpack(c.entry.Msg); err != nil {
			t.Fatal(err)
		}
		m.Answer = append(m.Answer, &dns.A{Hdr: m.Answer[0].(*dns.A).Hdr, A: net.IPv4(192, 0, 2, 2)})
		st, err := dnsmsg.Prepare(m, 300, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		two.Msg, two.Offsets = st.Msg, st.Offsets
		if n := len(two.Encode()); n > 48 {
			t.Errorf("two A records: %d bytes", n)
		}
	}
}

func TestEntryV2Times(t *testing.T) {
	base := realAnswers(t)[0]
	for _, c := range []struct {
		stored time.Time
		ttl    uint32
		stale  time.Duration
		v2     bool
	}{
		{time.UnixMilli(0), 0, 0, true},
		{time.UnixMilli(1_790_000_000_001), 0, 3 * time.Hour, true},
		{time.UnixMilli(1_790_000_000_001), 1, 1234 * time.Millisecond, true},
		{time.UnixMilli(1_790_000_000_001), 86400, -time.Second, true},
		{time.UnixMilli(1_790_000_000_001), 1 << 31, -5 * time.Millisecond, true},
		{time.UnixMilli(1_790_000_000_001), 0xffffffff, 100000 * time.Hour, true},
		{time.Date(2030, 1, 2, 3, 4, 5, 678_900_000, time.UTC), 300, time.Minute, true}, // sub-ms dropped
		{time.UnixMilli(-1), 300, time.Hour, false},
		{time.Time{}, 300, time.Hour, false},
	} {
		e := *base.entry
		e.StoredAt, e.TTL = c.stored, c.ttl
		e.StaleUntil = e.Expires().Add(c.stale)
		b := e.Encode()
		if (b[0] == entryVersion) != c.v2 {
			t.Errorf("stored %v: version %d", c.stored, b[0])
		}
		got, err := Decode(base.key, b)
		if err != nil {
			t.Fatalf("stored %v ttl %d stale %v: %v", c.stored, c.ttl, c.stale, err)
		}
		if got.StoredAt.UnixMilli() != e.StoredAt.UnixMilli() || got.TTL != e.TTL ||
			got.StaleUntil.UnixMilli() != e.StaleUntil.UnixMilli() {
			t.Errorf("stored %v ttl %d stale %v: got %v %d %v", c.stored, c.ttl, c.stale, got.StoredAt, got.TTL, got.StaleUntil)
		}
	}
}

// TestEntryV2Ineligible checks that entries version 2 cannot rebuild
// exactly are written as version 1.
func TestEntryV2Ineligible(t *testing.T) {
	base := realAnswers(t)[0].entry
	for name, mod := range map[string]func(e *Entry){
		"nonzero ID":       func(e *Entry) { binary.BigEndian.PutUint16(e.Msg, 7) },
		"two questions":    func(e *Entry) { binary.BigEndian.PutUint16(e.Msg[4:], 2) },
		"offsets differ":   func(e *Entry) { e.Offsets = []uint16{12} },
		"no offsets":       func(e *Entry) { e.Offsets = nil },
		"upper-case label": func(e *Entry) { e.Msg[13] = 'W' },
	} {
		e := *base
		e.Msg = bytes.Clone(base.Msg)
		mod(&e)
		if b := e.Encode(); b[0] != entryV1 {
			t.Errorf("%s: version %d written", name, b[0])
		}
	}
}

// corruptV2Seeds are version 3 encodings Decode must refuse under testKey:
// each carries testKey's question tag, so what is wrong is what follows.
func corruptV2Seeds() map[string][]byte {
	valid := (&Entry{StoredAt: time.UnixMilli(1_700_000_000_000), TTL: 300,
		StaleUntil: time.UnixMilli(1_700_000_300_000).Add(time.Hour)}).withAnswer()
	p := func(b ...byte) []byte { return append(bytes.Clone(valid[:v3FormAt]), b...) }
	seeds := map[string][]byte{
		"version only":     {entryVersion},
		"tag only":         p(),
		"form only":        p(0),
		"bad form":         p(0x81, 0, 0),
		"full form, short": p(v2Full, 0x81),
		"varint overflow":  append(p(0, 0x10), bytes.Repeat([]byte{0xff}, 11)...),
		"ttl too large":    p(0, 0x10, 1, 0xff, 0xff, 0xff, 0xff, 0x7f, 0),
		"count too large":  p(v2Full, 0x81, 0x80, 0xff, 0xff, 0x7f, 0, 0, 1, 1, 0),
		"QR clear":         p(v2Full, 0x01, 0x80, 1, 0, 0, 1, 1, 0),
		"rcode REFUSED":    p(5, 0x10, 1, 1, 0),
	}
	for n := 3; n < len(valid); n++ {
		seeds[fmt.Sprintf("truncated to %d", n)] = valid[:n]
	}
	extra := bytes.Clone(valid)
	extra[v3FormAt+1] = 0x20 // two answers, one stored
	seeds["count past records"] = extra
	fewer := bytes.Clone(valid)
	fewer[v3FormAt+1] = 0 // no answer, one stored
	seeds["record past the counts"] = fewer
	other := bytes.Clone(valid)
	other[1] ^= 1
	seeds["another question's tag"] = other
	return seeds
}

// withAnswer encodes e with a one-record A answer to testKey's question.
func (e *Entry) withAnswer() []byte {
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	m.Response, m.RecursionAvailable = true, true
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
		A: net.IPv4(192, 0, 2, 1)}}
	st, err := dnsmsg.Prepare(m, 300, 0, true)
	if err != nil {
		panic(err)
	}
	c := *e
	c.Msg, c.Offsets = st.Msg, st.Offsets
	return c.Encode()
}

func TestDecodeV2Corrupt(t *testing.T) {
	valid := (&Entry{StoredAt: time.UnixMilli(1_700_000_000_000), TTL: 300}).withAnswer()
	if valid[0] != entryVersion {
		t.Fatalf("version %d", valid[0])
	}
	if _, err := Decode(testKey, valid); err != nil {
		t.Fatal(err)
	}
	expectCorrupt(t, corruptV2Seeds())
	for _, key := range []string{"", "x", "dns:{www.example.com.}", "dns:{www.example.com.}:A",
		"dns:{www.example.com.}:BOGUS:IN", "dns:{www.example.com.}:A:XX", "dns:{www.example.com.}::IN",
		"dns:{www.example.com.}:A:CLASS99999", "dns:{" + strings.Repeat("a.", 200) + "}:A:IN", "dns:{a..b.}:A:IN"} {
		if _, err := Decode(key, valid); !errors.Is(err, ErrCorrupt) {
			t.Errorf("key %q: err = %v, want ErrCorrupt", key, err)
		}
	}
}

// BenchmarkDecode decodes real answers written as version 1 (the long
// layout, whose message aliases the value) and as version 3.
func BenchmarkDecode(b *testing.B) {
	for _, c := range realAnswers(b) {
		switch c.name {
		case "A", "CNAME chain", "NXDOMAIN + SOA", "20 records (full form)":
		default:
			continue
		}
		for _, v := range []struct {
			name string
			enc  []byte
		}{{"v1", c.entry.appendV1(nil)}, {"v3", c.entry.Encode()}} {
			b.Run(strings.ReplaceAll(c.name, " ", "_")+"/"+v.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Decode(c.key, v.enc); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
