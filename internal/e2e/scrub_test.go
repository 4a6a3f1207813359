package e2e

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/shardns/shardns/internal/testutil/dnstest"
)

// startPlantingUpstream serves, over UDP on loopback, an upstream that
// answers every A question with 192.0.2.10 and adds records about
// bank.test in every section: www.bank.test's address in the answer and
// additional sections, bank.test's NS in the authority.
func startPlantingUpstream(t *testing.T) string {
	t.Helper()
	rr := func(s string) dns.RR {
		x, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	planted := []dns.RR{rr("www.bank.test. 86400 IN A 203.0.113.66"), rr("bank.test. 86400 IN NS ns.evil.test."), rr("ns.evil.test. 86400 IN A 203.0.113.53")}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if q := r.Question[0]; q.Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 120}, A: net.IPv4(192, 0, 2, 10)}, planted[0]}
			m.Ns = []dns.RR{planted[1]}
			m.Extra = []dns.RR{planted[0], planted[2]}
		}
		if opt := r.IsEdns0(); opt != nil {
			m.SetEdns0(opt.UDPSize(), opt.Do())
		}
		_ = w.WriteMsg(m)
	})
	return dnstest.StartUDP(t, handler)
}

// checkScrubbedAnswer asks addr for a.example.com and checks that nothing
// about bank.test came back.
func checkScrubbedAnswer(t *testing.T, addr string) {
	t.Helper()
	r, err := exchange(addr, "udp", "a.example.com", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if got := rdata(r.Answer); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"192.0.2.10"}) {
		t.Errorf("rcode %d answer %v, want a.example.com's address alone", r.Rcode, r.Answer)
	}
	for _, rr := range append(append([]dns.RR{}, r.Ns...), r.Extra...) {
		if strings.Contains(rr.Header().Name, "bank.test") || strings.Contains(rr.Header().Name, "evil.test") {
			t.Errorf("planted record served: %v", rr)
		}
	}
}

// TestAllInOneScrubsUpstreamAnswers: dnsd's in-process resolver serves and
// caches nothing of what an upstream adds about other zones, and its
// /metrics counts the records it dropped.
func TestAllInOneScrubsUpstreamAnswers(t *testing.T) {
	up := startPlantingUpstream(t)
	addr, metrics := port(t), port(t)
	d := start(t, "dnsd", nil, "-listen", addr, "-upstream", up, "-metrics", metrics)
	waitTCP(t, d, addr)
	waitTCP(t, d, metrics)
	checkScrubbedAnswer(t, addr)
	checkScrubbedAnswer(t, addr) // from the cache
	for section, want := range map[string]float64{"answer": 1, "authority": 1, "additional": 2} {
		if got := metric(t, metrics, `shardns_scrubbed_records_total{section="`+section+`"}`); got != want {
			t.Errorf("dnsd scrubbed %s: %v, want %v", section, got, want)
		}
	}
}

// TestResolverdScrubsUpstreamAnswers: the same through resolverd's gRPC
// and a dnsd frontend; resolverd counts what it dropped.
func TestResolverdScrubsUpstreamAnswers(t *testing.T) {
	up := startPlantingUpstream(t)
	grpcAddr, rmetrics := port(t), port(t)
	res := start(t, "resolverd", nil, "-listen", grpcAddr, "-upstream", up, "-metrics", rmetrics)
	waitTCP(t, res, grpcAddr)
	waitTCP(t, res, rmetrics)
	addr := port(t)
	d := start(t, "dnsd", nil, "-listen", addr, "-resolver", grpcAddr)
	waitTCP(t, d, addr)
	checkScrubbedAnswer(t, addr)
	if got := metric(t, rmetrics, "shardns_scrubbed_answers_total"); got != 1 {
		t.Errorf("resolverd scrubbed answers: %v, want 1", got)
	}
	if got := metric(t, rmetrics, `shardns_scrubbed_records_total{section="additional"}`); got != 2 {
		t.Errorf("resolverd scrubbed additional records: %v, want 2", got)
	}
}
