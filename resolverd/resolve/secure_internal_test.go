package resolve

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestCapTTL: a secure answer's TTLs end no later than its validation
// holds; without an expiry nothing changes.
func TestCapTTL(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	now := time.Unix(1_700_000_000, 0)
	m := &dns.Msg{Answer: []dns.RR{rr("a. 300 IN A 192.0.2.1"), rr("a. 30 IN A 192.0.2.2")}, Ns: []dns.RR{rr("a. 3600 IN NS ns.a.")}}
	capTTL(m, now.Add(60*time.Second+500*time.Millisecond), now)
	if got := []uint32{m.Answer[0].Header().Ttl, m.Answer[1].Header().Ttl, m.Ns[0].Header().Ttl}; got[0] != 60 || got[1] != 30 || got[2] != 60 {
		t.Errorf("capped TTLs %v, want [60 30 60]", got)
	}
	capTTL(m, now.Add(-time.Second), now)
	if ttl := m.Answer[0].Header().Ttl; ttl != 0 {
		t.Errorf("expired validation: TTL %d, want 0", ttl)
	}
	m.Answer[0].Header().Ttl = 300
	capTTL(m, time.Time{}, now)
	if ttl := m.Answer[0].Header().Ttl; ttl != 300 {
		t.Errorf("no expiry: TTL %d, want 300", ttl)
	}
}

// TestWithoutDNSSEC: a query without DO gets no RRSIG, NSEC or NSEC3 but
// of the type it asked for; with DO, everything; the records are copies.
func TestWithoutDNSSEC(t *testing.T) {
	a, _ := dns.NewRR("a. 300 IN A 192.0.2.1")
	sig, _ := dns.NewRR("a. 300 IN RRSIG A 13 1 300 20300101000000 20200101000000 1 a. AAAA")
	nsec, _ := dns.NewRR("a. 300 IN NSEC b. A RRSIG NSEC")
	in := []dns.RR{a, sig, nsec}
	if got := withoutDNSSEC(in, dns.TypeA, false); len(got) != 1 || got[0].Header().Rrtype != dns.TypeA {
		t.Errorf("no DO: %v", got)
	}
	if got := withoutDNSSEC(in, dns.TypeNSEC, false); len(got) != 2 {
		t.Errorf("no DO, NSEC asked: %v", got)
	}
	got := withoutDNSSEC(in, dns.TypeA, true)
	if len(got) != 3 {
		t.Errorf("DO: %v", got)
	}
	got[0].Header().Ttl = 1
	if a.Header().Ttl != 300 {
		t.Error("withoutDNSSEC returned the records themselves, not copies")
	}
}
