package zones

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

func TestExactAnswers(t *testing.T) {
	a := loadExample(t)
	cases := []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{"www.example.com.", dns.TypeA, []string{"www.example.com. 3600 IN A 127.0.0.10"}},
		{"www.example.com.", dns.TypeAAAA, []string{"www.example.com. 3600 IN AAAA ::1"}},
		{"example.com.", dns.TypeMX, []string{"example.com. 3600 IN MX 10 Mail.example.com."}},
		{"txt.example.com.", dns.TypeTXT, []string{`txt.example.com. 3600 IN TXT "hello" "world"`}},
		{"c3.example.com.", dns.TypeCNAME, []string{"c3.example.com. 3600 IN CNAME www.example.com."}},
		{"www.example.com.", dns.TypeANY, []string{"www.example.com. 3600 IN A 127.0.0.10", "www.example.com. 3600 IN AAAA ::1"}},
		// Case-insensitive match; owner as in the zone, question as asked.
		{"WWW.Example.COM.", dns.TypeA, []string{"www.example.com. 3600 IN A 127.0.0.10"}},
		{"mail.EXAMPLE.com.", dns.TypeA, []string{"Mail.example.com. 3600 IN A 127.0.0.25"}},
	}
	for _, tc := range cases {
		m := mustAnswer(t, a, tc.name, tc.qtype)
		if m.Rcode != dns.RcodeSuccess || !m.Authoritative {
			t.Errorf("%s: rcode %s AA %v, want NOERROR AA", tc.name, dns.RcodeToString[m.Rcode], m.Authoritative)
		}
		if got := rrStrings(m.Answer); !slices.Equal(got, tc.want) {
			t.Errorf("%s %s: answer %q, want %q", tc.name, dns.TypeToString[tc.qtype], got, tc.want)
		}
		if len(m.Ns) != 0 {
			t.Errorf("%s: authority %v, want empty", tc.name, m.Ns)
		}
	}
}

func TestBigTXTWhole(t *testing.T) {
	a := loadExample(t)
	m := mustAnswer(t, a, "big.example.com.", dns.TypeTXT)
	if len(m.Answer) != 8 || m.Truncated {
		t.Fatalf("%d TXT records, TC=%v, want all 8", len(m.Answer), m.Truncated)
	}
	if n := m.Len(); n <= 1232 {
		t.Errorf("answer is %d bytes, the test needs more than 1232", n)
	}
}

func TestCNAMEChain(t *testing.T) {
	a := loadExample(t)
	m := mustAnswer(t, a, "C1.example.com.", dns.TypeA)
	want := []string{
		"c1.example.com. 3600 IN CNAME c2.example.com.",
		"c2.example.com. 3600 IN CNAME c3.example.com.",
		"c3.example.com. 3600 IN CNAME www.example.com.",
		"www.example.com. 3600 IN A 127.0.0.10",
	}
	if got := rrStrings(m.Answer); !slices.Equal(got, want) || m.Rcode != dns.RcodeSuccess {
		t.Errorf("answer %q rcode %s, want %q", got, dns.RcodeToString[m.Rcode], want)
	}
}

func TestCNAMEOutsideIsPartial(t *testing.T) {
	a := loadExample(t)
	m := mustAnswer(t, a, "out.example.com.", dns.TypeA)
	want := []string{"out.example.com. 3600 IN CNAME www.example.net."}
	if got := rrStrings(m.Answer); !slices.Equal(got, want) || m.Rcode != dns.RcodeSuccess || len(m.Ns) != 0 {
		t.Errorf("answer %q authority %v rcode %s, want just %q", got, m.Ns, dns.RcodeToString[m.Rcode], want)
	}
}

func TestCNAMELoopStops(t *testing.T) {
	a := loadExample(t)
	m := mustAnswer(t, a, "loop1.example.com.", dns.TypeA)
	want := []string{
		"loop1.example.com. 3600 IN CNAME loop2.example.com.",
		"loop2.example.com. 3600 IN CNAME loop1.example.com.",
	}
	if got := rrStrings(m.Answer); !slices.Equal(got, want) {
		t.Errorf("answer %q, want %q", got, want)
	}
}

func TestCNAMEIntoNestedZone(t *testing.T) {
	a := loadExample(t)
	m := mustAnswer(t, a, "toinner.example.com.", dns.TypeA)
	want := []string{
		"toinner.example.com. 3600 IN CNAME www.inner.example.com.",
		"www.inner.example.com. 60 IN A 127.0.0.20",
	}
	if got := rrStrings(m.Answer); !slices.Equal(got, want) {
		t.Errorf("answer %q, want %q", got, want)
	}
	// A CNAME to a missing name: NXDOMAIN from the target's zone.
	dir := writeFiles(t, map[string]string{"example.org.zone": `@ 3600 IN SOA ns. h. 1 2 3 4 50
dangling 3600 IN CNAME gone
`})
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	m = mustAnswer(t, b, "dangling.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeNameError || len(m.Answer) != 1 || len(m.Ns) != 1 || m.Ns[0].Header().Ttl != 50 {
		t.Errorf("dangling CNAME: rcode %s answer %v ns %v, want NXDOMAIN with the CNAME and SOA TTL 50", dns.RcodeToString[m.Rcode], m.Answer, m.Ns)
	}
}

func TestNegativeAnswers(t *testing.T) {
	a := loadExample(t)
	cases := []struct {
		name    string
		qtype   uint16
		rcode   int
		soaName string
		soaTTL  uint32
	}{
		{"nope.example.com.", dns.TypeA, dns.RcodeNameError, "example.com.", 300},
		{"www.example.com.", dns.TypeMX, dns.RcodeSuccess, "example.com.", 300}, // NODATA
		{"b.c.example.com.", dns.TypeA, dns.RcodeSuccess, "example.com.", 300},  // empty non-terminal
		{"c.example.com.", dns.TypeTXT, dns.RcodeSuccess, "example.com.", 300},  // empty non-terminal
		{"x.b.c.example.com.", dns.TypeA, dns.RcodeNameError, "example.com.", 300},
		{"wild.example.com.", dns.TypeA, dns.RcodeSuccess, "example.com.", 300}, // parent of a wildcard
		{"nope.inner.example.com.", dns.TypeA, dns.RcodeNameError, "inner.example.com.", 60},
		{"www.inner.example.com.", dns.TypeAAAA, dns.RcodeSuccess, "inner.example.com.", 60},
		{"sub.example.com.", dns.TypeDS, dns.RcodeSuccess, "example.com.", 300}, // parent side of the cut
	}
	for _, tc := range cases {
		m := mustAnswer(t, a, tc.name, tc.qtype)
		if m.Rcode != tc.rcode || !m.Authoritative || len(m.Answer) != 0 {
			t.Errorf("%s: rcode %s AA %v answer %v, want %s AA and no answer", tc.name, dns.RcodeToString[m.Rcode], m.Authoritative, m.Answer, dns.RcodeToString[tc.rcode])
			continue
		}
		if len(m.Ns) != 1 {
			t.Errorf("%s: authority %v, want the SOA", tc.name, m.Ns)
			continue
		}
		soa, ok := m.Ns[0].(*dns.SOA)
		if !ok || soa.Hdr.Name != tc.soaName || soa.Hdr.Ttl != tc.soaTTL {
			t.Errorf("%s: authority %v, want SOA %s with TTL %d", tc.name, m.Ns[0], tc.soaName, tc.soaTTL)
		}
	}
}

func TestWildcard(t *testing.T) {
	a := loadExample(t)
	m := mustAnswer(t, a, "Foo.wild.example.com.", dns.TypeA)
	want := []string{"Foo.wild.example.com. 3600 IN A 127.0.0.12"}
	if got := rrStrings(m.Answer); !slices.Equal(got, want) || !m.Authoritative {
		t.Errorf("answer %q, want %q", got, want)
	}
	m = mustAnswer(t, a, "a.b.wild.example.com.", dns.TypeTXT)
	want = []string{`a.b.wild.example.com. 3600 IN TXT "wild"`}
	if got := rrStrings(m.Answer); !slices.Equal(got, want) {
		t.Errorf("answer %q, want %q", got, want)
	}
	m = mustAnswer(t, a, "foo.wild.example.com.", dns.TypeAAAA)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
		t.Errorf("wildcard NODATA: rcode %s answer %v ns %v", dns.RcodeToString[m.Rcode], m.Answer, m.Ns)
	}
	// A CNAME whose target matches the wildcard.
	m = mustAnswer(t, a, "cwild.example.com.", dns.TypeA)
	want = []string{"cwild.example.com. 3600 IN CNAME x.wild.example.com.", "x.wild.example.com. 3600 IN A 127.0.0.12"}
	if got := rrStrings(m.Answer); !slices.Equal(got, want) {
		t.Errorf("answer %q, want %q", got, want)
	}
	// The wildcard does not cover existing names, nor names below them.
	m = mustAnswer(t, a, "www.example.com.", dns.TypeTXT)
	if len(m.Answer) != 0 {
		t.Errorf("existing name answered from a wildcard: %v", m.Answer)
	}
}

func TestDelegation(t *testing.T) {
	a := loadExample(t)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"host.sub.example.com.", dns.TypeA},
		{"sub.example.com.", dns.TypeNS},
		{"sub.example.com.", dns.TypeA},
		{"ns.sub.example.com.", dns.TypeA}, // glue is not authoritative data
	} {
		m := mustAnswer(t, a, q.name, q.qtype)
		if m.Authoritative || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
			t.Errorf("%s: AA %v rcode %s answer %v, want a referral", q.name, m.Authoritative, dns.RcodeToString[m.Rcode], m.Answer)
		}
		wantNS := []string{"sub.example.com. 3600 IN NS ns.sub.example.com.", "sub.example.com. 3600 IN NS ns.elsewhere.net."}
		if got := rrStrings(m.Ns); !slices.Equal(got, wantNS) {
			t.Errorf("%s: authority %q, want %q", q.name, got, wantNS)
		}
		wantGlue := []string{"ns.sub.example.com. 3600 IN A 127.0.0.54", "ns.sub.example.com. 3600 IN AAAA ::1"}
		if got := rrStrings(m.Extra); !slices.Equal(got, wantGlue) {
			t.Errorf("%s: additional %q, want %q", q.name, got, wantGlue)
		}
	}
}

func TestNestedZonesLongestMatch(t *testing.T) {
	a := loadExample(t)
	m := mustAnswer(t, a, "www.inner.example.com.", dns.TypeA)
	if got := rrStrings(m.Answer); len(got) != 1 || got[0] != "www.inner.example.com. 60 IN A 127.0.0.20" || !m.Authoritative {
		t.Errorf("answer %q AA %v: want the inner zone's record, not the parent's referral", got, m.Authoritative)
	}
	if got, want := a.Zones(), []string{"example.com.", "inner.example.com."}; !slices.Equal(got, want) {
		t.Errorf("Zones() = %q, want %q", got, want)
	}
}

func TestNotOurs(t *testing.T) {
	a := loadExample(t)
	for _, q := range []*dns.Msg{
		ask("www.example.org.", dns.TypeA),
		ask("com.", dns.TypeNS),
		ask("notexample.com.", dns.TypeA),
		func() *dns.Msg {
			q := ask("www.example.com.", dns.TypeA)
			q.Question[0].Qclass = dns.ClassCHAOS
			return q
		}(),
		func() *dns.Msg { q := ask("www.example.com.", dns.TypeA); q.Opcode = dns.OpcodeNotify; return q }(),
		new(dns.Msg),
		nil,
	} {
		if m, ok := a.Answer(q); ok {
			t.Errorf("answered %v with %v, want false", q, m)
		}
	}
	var empty *Authority
	if _, ok := empty.Answer(ask("www.example.com.", dns.TypeA)); ok {
		t.Error("nil Authority answered")
	}
}

func TestEDNSAndIsolation(t *testing.T) {
	a := loadExample(t)
	q := ask("www.example.com.", dns.TypeA)
	q.SetEdns0(4096, true)
	m, _ := a.Answer(q)
	if o := m.IsEdns0(); o == nil || !o.Do() {
		t.Errorf("answer OPT %v, want one echoing DO", o)
	}
	// Changing an answer must not change the zone.
	m.Answer[0].Header().Ttl = 1
	m.Answer[0].(*dns.A).A[3] = 99
	m2 := mustAnswer(t, a, "www.example.com.", dns.TypeA)
	if got := rrStrings(m2.Answer)[0]; got != "www.example.com. 3600 IN A 127.0.0.10" {
		t.Errorf("zone changed through an answer: %q", got)
	}
	if m2.IsEdns0() != nil {
		t.Error("OPT in the answer to a query without one")
	}
}

func TestConcurrentAnswers(t *testing.T) {
	a := loadExample(t)
	names := []string{"www.example.com.", "c1.example.com.", "nope.example.com.", "x.wild.example.com.", "host.sub.example.com."}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				name := names[(i+j)%len(names)]
				if _, ok := a.Answer(ask(strings.ToUpper(name), dns.TypeA)); !ok {
					t.Errorf("%s not answered", name)
					return
				}
			}
		})
	}
	wg.Wait()
}
