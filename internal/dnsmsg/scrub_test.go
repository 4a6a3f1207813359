package dnsmsg

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// Record texts the scrub table shares.
const (
	soaExample = "example.com. 300 IN SOA ns1.example.com. h.example.com. 1 2 3 4 60"
	soaBank    = "bank.test. 300 IN SOA ns.bank.test. h.bank.test. 1 2 3 4 60"
	nsBank     = "bank.test. 86400 IN NS ns.evil.test."
	aBank      = "www.bank.test. 86400 IN A 203.0.113.66"
	aEvilNS    = "ns.evil.test. 86400 IN A 203.0.113.53"
	sigDate    = "20300101000000 20200101000000 1234 "
)

// sig returns an RRSIG over covered at owner, signed by signer.
func sig(owner, covered, signer string) string {
	return owner + " 300 IN RRSIG " + covered + " 13 2 300 " + sigDate + signer + " AAAA"
}

// opt stands for an OPT record in a table's additional section.
const opt = "OPT"

type scrubCase struct {
	name       string
	qname      string
	qtype      uint16
	rcode      int
	an, ns, ex []string // the reply's sections
	// kept lists the records that stay in each section; nil: all of them.
	keptAn, keptNs, keptEx []string
}

// none says that a section keeps nothing.
var none = []string{}

func scrubTable() []scrubCase {
	long := strings.Repeat(strings.Repeat("a", 60)+".", 3) + "b." // 185 octets
	longTarget := strings.Repeat(strings.Repeat("c", 60)+".", 2)  // 122 octets
	return []scrubCase{
		{
			name: "clean answer", qname: "a.example.com.", qtype: dns.TypeA,
			an: []string{"a.example.com. 60 IN A 192.0.2.1", "a.example.com. 60 IN A 192.0.2.2"},
			ex: []string{opt},
		},
		{
			name: "extra answer owner, its glue and an unrelated NS", qname: "a.example.com.", qtype: dns.TypeA,
			an:     []string{"a.example.com. 60 IN A 192.0.2.10", aBank},
			ns:     []string{nsBank},
			ex:     []string{aBank, aEvilNS, opt},
			keptAn: []string{"a.example.com. 60 IN A 192.0.2.10"}, keptNs: none, keptEx: []string{opt},
		},
		{
			name: "another type at the name", qname: "a.example.com.", qtype: dns.TypeA,
			an:     []string{"a.example.com. 60 IN TXT \"x\"", "a.example.com. 60 IN A 192.0.2.1"},
			keptAn: []string{"a.example.com. 60 IN A 192.0.2.1"},
		},
		{
			name: "CNAME chain across names, out of order", qname: "www.example.com.", qtype: dns.TypeA,
			an: []string{
				"edge.cdn2.org. 20 IN A 198.51.100.7",
				aBank,
				"www.cdn.net. 60 IN CNAME edge.cdn2.org.",
				"www.example.com. 300 IN CNAME www.cdn.net.",
				"other.example.com. 300 IN CNAME www.bank.test.",
			},
			keptAn: []string{
				"edge.cdn2.org. 20 IN A 198.51.100.7",
				"www.cdn.net. 60 IN CNAME edge.cdn2.org.",
				"www.example.com. 300 IN CNAME www.cdn.net.",
			},
		},
		{
			name: "second CNAME at a name", qname: "www.example.com.", qtype: dns.TypeA,
			an: []string{
				"www.example.com. 300 IN CNAME www.cdn.net.",
				"www.example.com. 300 IN CNAME www.bank.test.",
				"www.cdn.net. 60 IN A 198.51.100.7",
				aBank,
			},
			keptAn: []string{"www.example.com. 300 IN CNAME www.cdn.net.", "www.cdn.net. 60 IN A 198.51.100.7"},
		},
		{
			name: "chain loop", qname: "a.example.com.", qtype: dns.TypeA,
			an: []string{
				"a.example.com. 60 IN CNAME b.example.com.",
				"b.example.com. 60 IN CNAME A.example.com.",
				"c.example.com. 60 IN CNAME a.example.com.",
			},
			keptAn: []string{"a.example.com. 60 IN CNAME b.example.com.", "b.example.com. 60 IN CNAME A.example.com."},
		},
		{
			name: "DNAME with its synthesized CNAME", qname: "x.old.example.", qtype: dns.TypeA,
			an: []string{
				"old.example. 300 IN DNAME new.example.",
				"x.old.example. 300 IN CNAME x.new.example.",
				"x.old.example. 300 IN CNAME www.bank.test.",
				"x.new.example. 60 IN A 192.0.2.4",
				"other.example. 300 IN DNAME bank.test.",
				aBank,
			},
			keptAn: []string{
				"old.example. 300 IN DNAME new.example.",
				"x.old.example. 300 IN CNAME x.new.example.",
				"x.new.example. 60 IN A 192.0.2.4",
			},
		},
		{
			name: "DNAME without the CNAME", qname: "x.y.old.example.", qtype: dns.TypeAAAA,
			an: []string{"OLD.example. 300 IN DNAME example.", "x.y.example. 60 IN AAAA 2001:db8::1"},
		},
		{
			name: "DNAME to the root and from it", qname: "a.b.", qtype: dns.TypeA,
			an: []string{"b. 300 IN DNAME .", "a. 60 IN A 192.0.2.9"},
		},
		{
			name: "DNAME at the name itself does not apply to it", qname: "old.example.", qtype: dns.TypeA,
			an:     []string{"old.example. 300 IN DNAME new.example.", "new.example. 60 IN A 192.0.2.4"},
			keptAn: none,
		},
		{
			name: "DNAME overflow (YXDOMAIN) keeps the DNAME", qname: long, qtype: dns.TypeA, rcode: dns.RcodeYXDomain,
			an:     []string{"b. 300 IN DNAME " + longTarget, "x.b. 300 IN CNAME " + longTarget},
			keptAn: []string{"b. 300 IN DNAME " + longTarget},
		},
		{
			name: "chain longer than MaxChain", qname: "c0.example.", qtype: dns.TypeA,
			an:     chainOf(MaxChain + 3),
			keptAn: chainOf(MaxChain + 3)[:MaxChain],
		},
		{
			name: "qtype CNAME keeps the CNAME at the name only", qname: "www.example.com.", qtype: dns.TypeCNAME,
			an: []string{
				"www.example.com. 300 IN CNAME www.cdn.net.",
				"www.cdn.net. 60 IN CNAME edge.cdn2.org.",
				"edge.cdn2.org. 20 IN A 198.51.100.7",
			},
			keptAn: []string{"www.example.com. 300 IN CNAME www.cdn.net."},
		},
		{
			name: "qtype CNAME under a DNAME keeps the synthesized CNAME alone", qname: "x.old.example.", qtype: dns.TypeCNAME,
			an:     []string{"old.example. 300 IN DNAME new.example.", "x.old.example. 300 IN CNAME x.new.example."},
			keptAn: []string{"x.old.example. 300 IN CNAME x.new.example."},
		},
		{
			name: "qtype CNAME does not follow a DNAME", qname: "x.old.example.", qtype: dns.TypeCNAME,
			an:     []string{"old.example. 300 IN DNAME new.example.", "x.new.example. 300 IN CNAME y.example."},
			keptAn: none,
		},
		{
			name: "qtype ANY keeps every record at the name", qname: "example.com.", qtype: dns.TypeANY,
			an: []string{
				"example.com. 60 IN A 192.0.2.1", "example.com. 60 IN MX 10 mail.example.com.",
				"example.com. 60 IN TXT \"v=spf1 -all\"", aBank,
			},
			ex:     []string{"mail.example.com. 60 IN A 192.0.2.25"},
			keptAn: []string{"example.com. 60 IN A 192.0.2.1", "example.com. 60 IN MX 10 mail.example.com.", "example.com. 60 IN TXT \"v=spf1 -all\""},
		},
		{
			name: "owner comparison ignores case", qname: "WwW.Example.COM.", qtype: dns.TypeA,
			an: []string{"www.example.com. 300 IN CNAME EDGE.cdn.NET.", "edge.CDN.net. 60 IN A 198.51.100.7"},
			ns: []string{"CDN.NET. 300 IN NS Ns1.Cdn.Net."},
			ex: []string{"ns1.cdn.net. 300 IN A 198.51.100.53", opt},
		},
		{
			name: "NXDOMAIN keeps the SOA of the name's zone", qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns:     []string{soaBank, "example.com. 300 IN NS ns1.example.com.", soaExample, "net. 300 IN SOA a.net. b.net. 1 2 3 4 5"},
			ex:     []string{"ns1.example.com. 300 IN A 192.0.2.53"},
			keptNs: []string{soaExample}, keptEx: none,
		},
		{
			// A name under a TLD that does not exist: the root's SOA.
			name: "NXDOMAIN keeps the root's SOA", qname: "www.nosuchtld.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns:     []string{". 86400 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400"},
			keptNs: []string{". 86400 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400"},
		},
		{
			name: "NODATA keeps the root's SOA, with the root's NSEC", qname: "com.", qtype: dns.TypeTXT,
			ns: []string{
				". 86400 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400",
				"com. 86400 IN NSEC commbank. NS DS RRSIG NSEC",
			},
			keptNs: []string{
				". 86400 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400",
				"com. 86400 IN NSEC commbank. NS DS RRSIG NSEC",
			},
		},
		{
			name: "NXDOMAIN at the end of a chain", qname: "www.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			an:     []string{"www.example.com. 300 IN CNAME nx.cdn.net."},
			ns:     []string{soaExample, "cdn.net. 300 IN SOA ns.cdn.net. h.cdn.net. 1 2 3 4 60"},
			keptNs: []string{"cdn.net. 300 IN SOA ns.cdn.net. h.cdn.net. 1 2 3 4 60"},
		},
		{
			name: "NODATA with NSEC proof", qname: "a.example.com.", qtype: dns.TypeAAAA,
			ns: []string{
				soaExample, sig("example.com.", "SOA", "example.com."),
				"a.example.com. 300 IN NSEC b.example.com. A RRSIG NSEC", sig("a.example.com.", "NSEC", "example.com."),
				"bank.test. 300 IN NSEC zzz.bank.test. A NS SOA", sig("bank.test.", "NSEC", "bank.test."),
				sig("a.example.com.", "A", "example.com."),
				"example.com. 300 IN NS ns1.example.com.",
			},
			keptNs: []string{
				soaExample, sig("example.com.", "SOA", "example.com."),
				"a.example.com. 300 IN NSEC b.example.com. A RRSIG NSEC", sig("a.example.com.", "NSEC", "example.com."),
			},
		},
		{
			name: "NXDOMAIN with NSEC3 proof", qname: "nx.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns: []string{
				soaExample,
				"2vptu5timamqttgl4luu9kg21e0aor3s.example.com. 300 IN NSEC3 1 0 0 - 2VPTU5TIMAMQTTGL4LUU9KG21E0AOR3T A",
				sig("2vptu5timamqttgl4luu9kg21e0aor3s.example.com.", "NSEC3", "example.com."),
				"2vptu5timamqttgl4luu9kg21e0aor3s.bank.test. 300 IN NSEC3 1 0 0 - 2VPTU5TIMAMQTTGL4LUU9KG21E0AOR3T A",
			},
			keptNs: []string{
				soaExample,
				"2vptu5timamqttgl4luu9kg21e0aor3s.example.com. 300 IN NSEC3 1 0 0 - 2VPTU5TIMAMQTTGL4LUU9KG21E0AOR3T A",
				sig("2vptu5timamqttgl4luu9kg21e0aor3s.example.com.", "NSEC3", "example.com."),
			},
		},
		{
			name: "positive answer: the zone's NS and its glue stay, the rest goes", qname: "www.example.com.", qtype: dns.TypeA,
			an: []string{"www.example.com. 300 IN A 192.0.2.80"},
			ns: []string{
				"example.com. 300 IN NS ns1.example.com.", "example.com. 300 IN NS ns.other.net.",
				nsBank, soaExample, "example.com. 300 IN DS 1 13 2 AAAA",
				"www.example.com. 300 IN CNAME x.example.com.", "x.example.com. 300 IN A 192.0.2.1",
			},
			ex: []string{
				"ns1.example.com. 300 IN A 192.0.2.53", "ns1.example.com. 300 IN AAAA 2001:db8::53",
				sig("ns1.example.com.", "A", "example.com."), sig("ns1.example.com.", "TXT", "example.com."),
				"ns.other.net. 300 IN A 198.51.100.53", aEvilNS, aBank,
				"ns1.example.com. 300 IN TXT \"glue?\"", "ns1.example.com. 300 IN CNAME x.", opt,
			},
			keptNs: []string{"example.com. 300 IN NS ns1.example.com.", "example.com. 300 IN NS ns.other.net."},
			keptEx: []string{
				"ns1.example.com. 300 IN A 192.0.2.53", "ns1.example.com. 300 IN AAAA 2001:db8::53",
				sig("ns1.example.com.", "A", "example.com."), "ns.other.net. 300 IN A 198.51.100.53", opt,
			},
		},
		{
			name: "referral: one NS RRset of an ancestor, its DS and glue", qname: "www.sub.example.com.", qtype: dns.TypeA,
			ns: []string{
				"sub.example.com. 300 IN NS ns.sub.example.com.", "sub.example.com. 300 IN DS 1 13 2 AAAA",
				sig("sub.example.com.", "DS", "example.com."),
				"example.com. 300 IN NS ns1.example.com.", nsBank, "bank.test. 300 IN DS 1 13 2 AAAA",
			},
			ex: []string{"ns.sub.example.com. 300 IN A 192.0.2.54", "ns1.example.com. 300 IN A 192.0.2.53", aEvilNS},
			keptNs: []string{
				"sub.example.com. 300 IN NS ns.sub.example.com.", "sub.example.com. 300 IN DS 1 13 2 AAAA",
				sig("sub.example.com.", "DS", "example.com."),
			},
			keptEx: []string{"ns.sub.example.com. 300 IN A 192.0.2.54"},
		},
		{
			name: "an NS of an unrelated zone is not a referral", qname: "a.example.com.", qtype: dns.TypeA,
			ns:     []string{nsBank, "bank.test. 300 IN DS 1 13 2 AAAA"},
			ex:     []string{aEvilNS},
			keptNs: none, keptEx: none,
		},
		{
			name: "MX exchange and SRV target addresses", qname: "example.com.", qtype: dns.TypeMX,
			an:     []string{"example.com. 300 IN MX 10 mx.example.net."},
			ex:     []string{"mx.example.net. 300 IN A 198.51.100.25", "mx.example.net. 300 IN AAAA 2001:db8::25", aBank},
			keptEx: []string{"mx.example.net. 300 IN A 198.51.100.25", "mx.example.net. 300 IN AAAA 2001:db8::25"},
		},
		{
			name: "SRV target", qname: "_sip._tcp.example.com.", qtype: dns.TypeSRV,
			an:     []string{"_sip._tcp.example.com. 300 IN SRV 10 5 5060 sip.example.com."},
			ex:     []string{"sip.example.com. 300 IN AAAA 2001:db8::5060", "www.example.com. 300 IN A 192.0.2.80"},
			keptEx: []string{"sip.example.com. 300 IN AAAA 2001:db8::5060"},
		},
		{
			name: "HTTPS with target . names its owner", qname: "example.com.", qtype: dns.TypeHTTPS,
			an:     []string{"example.com. 300 IN HTTPS 1 . alpn=h2"},
			ex:     []string{"example.com. 300 IN A 192.0.2.1", aBank},
			keptEx: []string{"example.com. 300 IN A 192.0.2.1"},
		},
		{
			name: "RRSIGs in the answer", qname: "www.example.com.", qtype: dns.TypeA,
			an: []string{
				"www.example.com. 300 IN CNAME a.example.com.", sig("www.example.com.", "CNAME", "example.com."),
				"a.example.com. 300 IN A 192.0.2.1", sig("a.example.com.", "A", "example.com."),
				sig("a.example.com.", "TXT", "example.com."), sig("www.bank.test.", "A", "bank.test."),
				sig("www.example.com.", "A", "example.com."),
			},
			keptAn: []string{
				"www.example.com. 300 IN CNAME a.example.com.", sig("www.example.com.", "CNAME", "example.com."),
				"a.example.com. 300 IN A 192.0.2.1", sig("a.example.com.", "A", "example.com."),
			},
		},
		{
			name: "qtype RRSIG", qname: "example.com.", qtype: dns.TypeRRSIG,
			an:     []string{sig("example.com.", "A", "example.com."), sig("www.example.com.", "A", "example.com.")},
			keptAn: []string{sig("example.com.", "A", "example.com.")},
		},
		{
			name: "wildcard answer: NSEC of the signer's zone", qname: "x.wild.example.com.", qtype: dns.TypeA,
			an: []string{"x.wild.example.com. 300 IN A 192.0.2.7", sig("x.wild.example.com.", "A", "example.com.")},
			ns: []string{
				"wild.example.com. 300 IN NSEC z.example.com. A RRSIG NSEC", sig("wild.example.com.", "NSEC", "example.com."),
				"a.bank.test. 300 IN NSEC z.bank.test. A", sig("a.bank.test.", "NSEC", "bank.test."),
			},
			keptNs: []string{"wild.example.com. 300 IN NSEC z.example.com. A RRSIG NSEC", sig("wild.example.com.", "NSEC", "example.com.")},
		},
		{
			name: "an RRSIG whose signer is not above it names no zone", qname: "a.example.com.", qtype: dns.TypeA,
			an:     []string{"a.example.com. 300 IN A 192.0.2.7", sig("a.example.com.", "A", "bank.test.")},
			ns:     []string{"a.bank.test. 300 IN NSEC z.bank.test. A"},
			keptNs: none,
		},
		{
			name: "another class", qname: "a.example.com.", qtype: dns.TypeA,
			an:     []string{"a.example.com. 60 IN A 192.0.2.1", "a.example.com. 60 CH A 192.0.2.2"},
			keptAn: []string{"a.example.com. 60 IN A 192.0.2.1"},
		},
		{
			name: "SERVFAIL keeps only the OPT", qname: "a.example.com.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure,
			ns:     []string{soaExample, "example.com. 300 IN NS ns1.example.com."},
			ex:     []string{"ns1.example.com. 300 IN A 192.0.2.53", opt},
			keptNs: none, keptEx: []string{opt},
		},
		{
			name: "SOA in a positive answer goes", qname: "a.example.com.", qtype: dns.TypeA,
			an:     []string{"a.example.com. 60 IN A 192.0.2.1"},
			ns:     []string{soaExample},
			keptNs: none,
		},
		{
			name: "an escaped dot is no label boundary", qname: `x\.example.com.`, qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns:     []string{soaExample, "com. 300 IN SOA a.com. b.com. 1 2 3 4 5"},
			keptNs: []string{"com. 300 IN SOA a.com. b.com. 1 2 3 4 5"},
		},
		{
			name: "OPT misplaced in the answer goes", qname: "a.example.com.", qtype: dns.TypeA,
			an:     []string{"a.example.com. 60 IN A 192.0.2.1", opt},
			keptAn: []string{"a.example.com. 60 IN A 192.0.2.1"},
		},
	}
}

// chainOf returns n CNAMEs c0.example -> c1.example -> ... and the A of
// the last target.
func chainOf(n int) []string {
	var out []string
	for i := range n {
		out = append(out, "c"+strconv.Itoa(i)+".example. 60 IN CNAME c"+strconv.Itoa(i+1)+".example.")
	}
	return append(out, "c"+strconv.Itoa(n)+".example. 60 IN A 192.0.2.1")
}

// rrs parses a table's records; opt becomes an OPT record.
func rrs(t testing.TB, texts []string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, s := range texts {
		if s == opt {
			o := new(dns.OPT)
			o.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}
			o.SetUDPSize(1232)
			out = append(out, o)
			continue
		}
		out = append(out, mustRR(t, s))
	}
	return out
}

// build makes the reply c describes.
func (c scrubCase) build(t testing.TB) (*dns.Msg, dns.Question) {
	t.Helper()
	q := dns.Question{Name: c.qname, Qtype: c.qtype, Qclass: dns.ClassINET}
	m := new(dns.Msg)
	m.Response = true
	m.Rcode = c.rcode
	m.Question = []dns.Question{q}
	m.Answer, m.Ns, m.Extra = rrs(t, c.an), rrs(t, c.ns), rrs(t, c.ex)
	return m, q
}

func texts(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return out
}

func TestScrub(t *testing.T) {
	for _, c := range scrubTable() {
		t.Run(c.name, func(t *testing.T) {
			m, q := c.build(t)
			before := m.Copy()
			got := Scrub(m, q)
			want := Scrubbed{}
			for _, s := range []struct {
				section    string
				got, given []dns.RR
				kept       []string
				dropped    *int
			}{
				{"answer", m.Answer, before.Answer, c.keptAn, &want.Answer},
				{"authority", m.Ns, before.Ns, c.keptNs, &want.Authority},
				{"additional", m.Extra, before.Extra, c.keptEx, &want.Additional},
			} {
				wantRRs := s.given
				if s.kept != nil {
					wantRRs = rrs(t, s.kept)
				}
				*s.dropped = len(s.given) - len(wantRRs)
				if g, w := texts(s.got), texts(wantRRs); !slices.Equal(g, w) {
					t.Errorf("%s:\n got %q\nwant %q", s.section, g, w)
				}
			}
			if got != want {
				t.Errorf("counts %+v, want %+v", got, want)
			}
			if again := Scrub(m, q); again.Total() != 0 {
				t.Errorf("a second Scrub dropped %+v more", again)
			}
			checkScrubbed(t, m, q, before)
		})
	}
}

func TestScrubNothingToDrop(t *testing.T) {
	if got := Scrub(nil, dns.Question{Name: "a.", Qtype: dns.TypeA, Qclass: dns.ClassINET}); got.Total() != 0 {
		t.Errorf("nil message: %+v", got)
	}
	for _, c := range scrubTable() {
		if c.keptAn != nil || c.keptNs != nil || c.keptEx != nil || strings.Contains(strings.Join(c.an, ""), "DNAME") {
			continue // something to drop, or a DNAME's target to build
		}
		m, q := c.build(t)
		an, ns, ex := m.Answer, m.Ns, m.Extra
		allocs := testing.AllocsPerRun(100, func() {
			if got := Scrub(m, q); got.Total() != 0 {
				t.Fatalf("%s: dropped %+v", c.name, got)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations with nothing to drop", c.name, allocs)
		}
		if &m.Answer[0] != &an[0] || len(m.Ns) != len(ns) || len(m.Extra) != len(ex) {
			t.Errorf("%s: sections replaced with nothing to drop", c.name)
		}
	}
}

func TestScrubLeavesSharedRecordsAlone(t *testing.T) {
	shared := rrs(t, []string{aBank, "a.example.com. 60 IN A 192.0.2.1"})
	orig := slices.Clone(shared)
	m := &dns.Msg{Answer: shared}
	q := dns.Question{Name: "a.example.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	if got := Scrub(m, q); got.Answer != 1 || len(m.Answer) != 1 {
		t.Fatalf("dropped %+v, answer %v", got, m.Answer)
	}
	if !slices.Equal(shared, orig) {
		t.Errorf("the slice the message shared was rewritten: %v", shared)
	}
}

// checkScrubbed checks what holds after any Scrub: every record kept was
// in the reply, in the same order; the answer holds only q's chain and its
// data; the other sections hold only the types they may.
func checkScrubbed(t *testing.T, m *dns.Msg, q dns.Question, before *dns.Msg) {
	t.Helper()
	for _, s := range []struct{ after, before []dns.RR }{{m.Answer, before.Answer}, {m.Ns, before.Ns}, {m.Extra, before.Extra}} {
		if !subsequence(texts(s.after), texts(s.before)) {
			t.Errorf("records added or reordered:\n%q\nfrom\n%q", texts(s.after), texts(s.before))
		}
	}
	reach := reachable(m.Answer, q.Name)
	for _, rr := range m.Answer {
		h := rr.Header()
		if q.Qclass != dns.ClassANY && h.Class != q.Qclass {
			t.Errorf("answer keeps %v of another class", rr)
		}
		switch v := rr.(type) {
		case *dns.DNAME:
			if !slices.ContainsFunc(reach, func(n string) bool { return dns.IsSubDomain(v.Hdr.Name, n) && !EqualNames(v.Hdr.Name, n) }) {
				t.Errorf("answer keeps %v above no name of the chain %v", rr, reach)
			}
		case *dns.RRSIG:
			if !slices.ContainsFunc(m.Answer, func(c dns.RR) bool {
				return c.Header().Rrtype == v.TypeCovered && EqualNames(c.Header().Name, v.Hdr.Name)
			}) && q.Qtype != dns.TypeRRSIG && q.Qtype != dns.TypeANY {
				t.Errorf("answer keeps %v covering nothing kept", rr)
			}
		default:
			if !slices.ContainsFunc(reach, func(n string) bool { return EqualNames(n, h.Name) }) {
				t.Errorf("answer keeps %v, not on the chain %v", rr, reach)
			}
			if h.Rrtype != q.Qtype && h.Rrtype != dns.TypeCNAME && q.Qtype != dns.TypeANY {
				t.Errorf("answer keeps %v, not of type %s", rr, dns.TypeToString[q.Qtype])
			}
		}
	}
	for _, rr := range m.Ns {
		switch rr.Header().Rrtype {
		case dns.TypeSOA, dns.TypeNS, dns.TypeDS, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeRRSIG:
		default:
			t.Errorf("authority keeps %v", rr)
		}
	}
	for _, rr := range m.Extra {
		switch rr.Header().Rrtype {
		case dns.TypeOPT, dns.TypeA, dns.TypeAAAA, dns.TypeRRSIG:
		default:
			t.Errorf("additional keeps %v", rr)
		}
	}
}

// reachable returns the names the answer's CNAMEs and DNAMEs lead to from
// qname, qname included: an independent reading of the chain rule.
func reachable(answer []dns.RR, qname string) []string {
	reach := []string{qname}
	has := func(n string) bool {
		return slices.ContainsFunc(reach, func(r string) bool { return EqualNames(r, n) })
	}
	for grew := true; grew && len(reach) <= MaxChain+1; {
		grew = false
		for _, rr := range answer {
			var next []string
			switch v := rr.(type) {
			case *dns.CNAME:
				if has(v.Hdr.Name) {
					next = append(next, v.Target)
				}
			case *dns.DNAME:
				for _, r := range reach {
					if dns.IsSubDomain(v.Hdr.Name, r) && !EqualNames(v.Hdr.Name, r) {
						prefix := r[:len(r)-len(v.Hdr.Name)]
						if v.Hdr.Name == "." {
							prefix = r
						}
						if v.Target == "." {
							next = append(next, prefix)
						} else {
							next = append(next, prefix+v.Target)
						}
					}
				}
			}
			for _, n := range next {
				if !has(n) {
					reach = append(reach, n)
					grew = true
				}
			}
		}
	}
	return reach
}

// subsequence reports whether a is b with some elements left out.
func subsequence(a, b []string) bool {
	i := 0
	for _, x := range b {
		if i < len(a) && a[i] == x {
			i++
		}
	}
	return i == len(a)
}

// FuzzScrub scrubs arbitrary replies: Scrub must not panic, add or reorder
// records, keep anything off the question's chain in the answer, or find
// more to drop a second time. The table's replies are the seeds.
func FuzzScrub(f *testing.F) {
	for _, c := range scrubTable() {
		m, _ := c.build(f)
		b, err := m.Pack()
		if err != nil {
			f.Fatalf("%s: %v", c.name, err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			return
		}
		q := dns.Question{Name: "a.example.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
		if len(m.Question) > 0 {
			q = m.Question[0]
		}
		before := m.Copy()
		got := Scrub(m, q)
		if got.Answer != len(before.Answer)-len(m.Answer) || got.Authority != len(before.Ns)-len(m.Ns) ||
			got.Additional != len(before.Extra)-len(m.Extra) {
			t.Fatalf("counts %+v do not match the sections: %d/%d/%d -> %d/%d/%d", got,
				len(before.Answer), len(before.Ns), len(before.Extra), len(m.Answer), len(m.Ns), len(m.Extra))
		}
		if again := Scrub(m, q); again.Total() != 0 {
			t.Fatalf("a second Scrub dropped %+v more", again)
		}
		checkScrubbed(t, m, q, before)
	})
}

// BenchmarkScrub measures Scrub on replies of the table: a plain answer
// (the fast path), a reply kept whole through the full rules, and replies
// with records to drop. Each round scrubs a shallow copy of the reply:
// Scrub gives it new sections and never writes the old ones, so the
// records can be shared. "unpack-junk" is the cost of reading the junk
// reply off the wire, for scale.
func BenchmarkScrub(b *testing.B) {
	byName := map[string]scrubCase{}
	for _, c := range scrubTable() {
		byName[c.name] = c
	}
	for _, bc := range []struct{ bench, table string }{
		{"clean", "clean answer"},
		{"chain-ns-glue", "owner comparison ignores case"},
		{"nxdomain-nsec3-junk", "NXDOMAIN with NSEC3 proof"},
		{"positive-ns-glue-junk", "positive answer: the zone's NS and its glue stay, the rest goes"},
		{"junk", "extra answer owner, its glue and an unrelated NS"},
	} {
		c, ok := byName[bc.table]
		if !ok {
			b.Fatalf("no case %q", bc.table)
		}
		m, q := c.build(b)
		b.Run(bc.bench, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := *m
				Scrub(&w, q)
			}
		})
	}
	m, _ := byName["extra answer owner, its glue and an unrelated NS"].build(b)
	wire, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("unpack-junk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := new(dns.Msg).Unpack(wire); err != nil {
				b.Fatal(err)
			}
		}
	})
}
