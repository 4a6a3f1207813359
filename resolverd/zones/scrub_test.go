package zones

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// TestAnswersPassScrubbing: the resolver scrubs local answers as it scrubs
// upstream ones (dnsmsg.Scrub), so every answer the zones give, positive,
// negative, chased, wildcard or referral, must hold nothing it would drop.
func TestAnswersPassScrubbing(t *testing.T) {
	a := loadExample(t)
	names := []string{
		"example.com.", "www.example.com.", "WWW.Example.COM.", "mail.example.com.", "txt.example.com.",
		"big.example.com.", "c1.example.com.", "c3.example.com.", "out.example.com.", "loop1.example.com.",
		"a.b.c.example.com.", "b.c.example.com.", "x.wild.example.com.", "y.x.wild.example.com.",
		"cwild.example.com.", "sub.example.com.", "a.b.sub.example.com.", "ns.sub.example.com.",
		"toinner.example.com.", "inner.example.com.", "www.inner.example.com.", "nx.inner.example.com.",
		"nope.example.com.", "ns1.example.com.",
	}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeNS, dns.TypeSOA, dns.TypeTXT,
		dns.TypeCNAME, dns.TypeANY, dns.TypeDS, dns.TypeSRV}
	for _, name := range names {
		for _, qt := range types {
			for _, edns := range []bool{false, true} {
				q := ask(name, qt)
				if edns {
					q.SetEdns0(1232, true)
				}
				m, ok := a.Answer(q)
				if !ok {
					t.Fatalf("%s %s: not answered", name, dns.TypeToString[qt])
				}
				before := m.String()
				if n := dnsmsg.Scrub(m, q.Question[0]); n.Total() != 0 {
					t.Errorf("%s %s: scrubbing dropped %+v from\n%s", name, dns.TypeToString[qt], n,
						strings.TrimSpace(before))
				}
			}
		}
	}
}
