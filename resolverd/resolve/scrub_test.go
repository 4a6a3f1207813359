package resolve_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/resolverd/resolve"
)

// junkUpstream answers every question truthfully and adds records about
// bank.test, a zone unrelated to the question, in every section: what an
// upstream trying to plant data in clients' caches would send. It
// compresses names, as servers do, so that its bytes could be passed on
// as they are but for the scrubbing.
type junkUpstream struct{}

func (junkUpstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative, m.Compress = true, true
	rr := func(s string) dns.RR {
		x, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		return x
	}
	q := r.Question[0]
	switch {
	case strings.HasPrefix(strings.ToLower(q.Name), "gone."):
		// NXDOMAIN with the SOA of its own zone and one of another.
		m.Rcode = dns.RcodeNameError
		m.Ns = append(m.Ns,
			rr("bank.test. 60 IN SOA ns.bank.test. h.bank.test. 1 2 3 4 30"),
			rr("example.net. 60 IN SOA ns.example.net. h.example.net. 1 2 3 4 30"))
	case q.Qtype == dns.TypeA:
		m.Answer = append(m.Answer,
			rr(q.Name+" 120 IN A 192.0.2.10"),
			rr("www.bank.test. 86400 IN A 203.0.113.66"))
		m.Ns = append(m.Ns, rr("bank.test. 86400 IN NS ns.evil.test."))
		m.Extra = append(m.Extra,
			rr("www.bank.test. 86400 IN A 203.0.113.66"),
			rr("ns.evil.test. 86400 IN A 203.0.113.53"))
	}
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	_ = w.WriteMsg(m)
}

// startJunkUpstream serves junkUpstream over UDP on a free loopback port.
func startJunkUpstream(t testing.TB) string {
	t.Helper()
	return dnstest.StartUDP(t, junkUpstream{})
}

// ednsQuestion is question with an EDNS OPT record.
func ednsQuestion(name string, qtype uint16) *dns.Msg {
	m := question(name, qtype)
	m.SetEdns0(1232, false)
	return m
}

// names lists the owner names of rrs, lower-cased.
func names(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.ToLower(rr.Header().Name))
	}
	return out
}

// scrubbed reads shardns_scrubbed_records_total for section from reg.
func scrubbed(t *testing.T, reg *prometheus.Registry, section string) float64 {
	t.Helper()
	return counter(t, reg, "shardns_scrubbed_records_total", section)
}

// counter reads the counter name of reg, the series whose section label
// is section ("": the series without labels).
func counter(t *testing.T, reg *prometheus.Registry, name, section string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "section" {
					got = l.GetValue()
				}
			}
			if got == section {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{section=%q}", name, section)
	return 0
}

func TestUpstreamRecordsOutsideTheQuestionAreScrubbed(t *testing.T) {
	r, err := resolve.New(nil, newForwarder(t, startJunkUpstream(t)))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collector())

	// Asked as the lookup chain asks, packed.
	m, err := dnstest.Exchange(ctx(t), r, ednsQuestion("a.example.com.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(m.Answer); !slices.Equal(got, []string{"a.example.com."}) || rdata(m.Answer)[0] != "192.0.2.10" {
		t.Errorf("answer %v, want a.example.com's address alone", m.Answer)
	}
	if len(m.Ns) != 0 {
		t.Errorf("authority %v, want bank.test's NS dropped", m.Ns)
	}
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			t.Errorf("additional keeps %v", rr)
		}
	}
	if m.IsEdns0() == nil {
		t.Error("the OPT record was dropped")
	}
	for section, want := range map[string]float64{"answer": 1, "authority": 1, "additional": 2} {
		if got := scrubbed(t, reg, section); got != want {
			t.Errorf("scrubbed %s: %v, want %v", section, got, want)
		}
	}
	if got := counter(t, reg, "shardns_scrubbed_answers_total", ""); got != 1 {
		t.Errorf("scrubbed answers: %v, want 1", got)
	}

	// NXDOMAIN keeps the SOA of the name's zone only.
	m, err = dnstest.Exchange(ctx(t), r, ednsQuestion("gone.example.net.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(m.Ns); m.Rcode != dns.RcodeNameError || !slices.Equal(got, []string{"example.net."}) {
		t.Errorf("NXDOMAIN: rcode %d authority %v, want example.net's SOA alone", m.Rcode, got)
	}
	if got := scrubbed(t, reg, "authority"); got != 2 {
		t.Errorf("scrubbed authority after the NXDOMAIN: %v, want 2", got)
	}
}

func TestLocalZoneChaseIsScrubbed(t *testing.T) {
	r, err := resolve.New(loadZones(t), newForwarder(t, startJunkUpstream(t)))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collector())

	// out.example.test is a CNAME to www.example.net, completed from the
	// upstream, which adds bank.test's records.
	m, src, err := r.Exchange(ctx(t), ednsQuestion("out.example.test.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(src, "zone") {
		t.Errorf("source %q, want the zone", src)
	}
	want := []string{"out.example.test.", "www.example.net."}
	if got := names(m.Answer); !slices.Equal(got, want) {
		t.Errorf("answer owners %v, want %v", got, want)
	}
	if len(m.Ns) != 0 || len(m.Extra) != 1 {
		t.Errorf("authority %v additional %v, want none but the OPT", m.Ns, m.Extra)
	}
	if got := scrubbed(t, reg, "answer"); got != 1 {
		t.Errorf("scrubbed answer: %v, want 1", got)
	}

	// A zone's own answer has nothing to drop.
	before := counter(t, reg, "shardns_scrubbed_answers_total", "")
	if _, _, err := r.Exchange(ctx(t), question("www.example.test.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if after := counter(t, reg, "shardns_scrubbed_answers_total", ""); after != before {
		t.Errorf("a clean zone answer was counted as scrubbed (%v -> %v)", before, after)
	}
}
