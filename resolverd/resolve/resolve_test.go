package resolve_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/resolverd/resolve"
)

func ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestNewNeedsZonesOrUpstreams(t *testing.T) {
	if r, err := resolve.New(nil, nil); err == nil || r != nil {
		t.Fatalf("New(nil, nil) = %v, %v; want an error", r, err)
	} else if !strings.HasPrefix(err.Error(), "resolve: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
	if _, err := resolve.New(loadZones(t), nil); err != nil {
		t.Errorf("zones only: %v", err)
	}
	if _, err := resolve.New(nil, newForwarder(t, deadAddr(t))); err != nil {
		t.Errorf("upstreams only: %v", err)
	}
}

func TestZoneAnswer(t *testing.T) {
	up := startUpstream(t)
	r, err := resolve.New(loadZones(t), newForwarder(t, up.addr))
	if err != nil {
		t.Fatal(err)
	}
	q := question("WWW.example.test.", dns.TypeA)
	m, src, err := r.Exchange(ctx(t), q)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(src, "zone") {
		t.Errorf("source %q, want the zone", src)
	}
	if m.Id != q.Id || !m.Response || m.Rcode != dns.RcodeSuccess || !m.Authoritative || !m.RecursionAvailable {
		t.Errorf("header: id %#x qr %v rcode %d aa %v ra %v", m.Id, m.Response, m.Rcode, m.Authoritative, m.RecursionAvailable)
	}
	if got := rdata(m.Answer); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("answer %v", got)
	}
	if m.Question[0].Name != "WWW.example.test." {
		t.Errorf("question %q, want the name as asked", m.Question[0].Name)
	}
	// NXDOMAIN in the zone is the zone's answer, with its SOA.
	m, src, err = r.Exchange(ctx(t), question("nope.example.test.", dns.TypeA))
	if err != nil || m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA || !strings.HasPrefix(src, "zone") {
		t.Errorf("NXDOMAIN in the zone: %v %q %v", m, src, err)
	}
	if n := up.queries.Load(); n != 0 {
		t.Errorf("zone names sent %d queries upstream", n)
	}
}

func TestOutsideZoneGoesUpstream(t *testing.T) {
	up := startUpstream(t)
	r, err := resolve.New(loadZones(t), newForwarder(t, up.addr))
	if err != nil {
		t.Fatal(err)
	}
	m, src, err := r.Exchange(ctx(t), question("www.example.net.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if src != "udp://"+up.addr || !slices.Equal(rdata(m.Answer), []string{"192.0.2.7"}) || m.Id != 0x2a {
		t.Errorf("source %q answer %v id %#x", src, rdata(m.Answer), m.Id)
	}
}

func TestZoneCNAMECompletedUpstream(t *testing.T) {
	cases := []struct {
		name    string
		rcode   int
		answer  []string
		soaFrom string // owner of the SOA expected in the authority section
	}{
		{"out.example.test.", dns.RcodeSuccess, []string{"www.example.net.", "192.0.2.7"}, ""},
		{"gone.example.test.", dns.RcodeNameError, []string{"nx.example.net."}, "example.net."},
		// Out to the upstream and back into the zone.
		{"bounce.example.test.", dns.RcodeSuccess, []string{"back.example.net.", "www.example.test.", "192.0.2.1"}, ""},
	}
	up := startUpstream(t)
	r, err := resolve.New(loadZones(t), newForwarder(t, up.addr))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		m, src, err := r.Exchange(ctx(t), question(c.name, dns.TypeA))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !strings.HasPrefix(src, "zone") {
			t.Errorf("%s: source %q, want the zone that began the chain", c.name, src)
		}
		if m.Rcode != c.rcode {
			t.Errorf("%s: rcode %s, want %s", c.name, dns.RcodeToString[m.Rcode], dns.RcodeToString[c.rcode])
		}
		if got := rdata(m.Answer); !slices.Equal(got, c.answer) {
			t.Errorf("%s: answer %v, want %v", c.name, got, c.answer)
		}
		if c.soaFrom != "" && (len(m.Ns) != 1 || m.Ns[0].Header().Name != c.soaFrom) {
			t.Errorf("%s: authority %v, want the SOA of %s", c.name, m.Ns, c.soaFrom)
		}
		if m.Id != 0x2a || m.Question[0].Name != c.name {
			t.Errorf("%s: id %#x question %v", c.name, m.Id, m.Question)
		}
	}
}

func TestCNAMELoopThroughUpstreamIsBounded(t *testing.T) {
	up := startUpstream(t)
	r, err := resolve.New(loadZones(t), newForwarder(t, up.addr))
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := r.Exchange(ctx(t), question("loop.example.test.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if n := up.queries.Load(); n == 0 || n > 16 {
		t.Errorf("a CNAME loop through the upstream made %d upstream queries", n)
	}
	if len(m.Answer) == 0 || len(m.Answer) > 40 {
		t.Errorf("%d records for a loop", len(m.Answer))
	}
}

func TestCNAMEQueryIsNotChased(t *testing.T) {
	up := startUpstream(t)
	r, err := resolve.New(loadZones(t), newForwarder(t, up.addr))
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := r.Exchange(ctx(t), question("out.example.test.", dns.TypeCNAME))
	if err != nil {
		t.Fatal(err)
	}
	if got := rdata(m.Answer); !slices.Equal(got, []string{"www.example.net."}) {
		t.Errorf("answer %v, want the CNAME alone", got)
	}
	if n := up.queries.Load(); n != 0 {
		t.Errorf("%d upstream queries for a CNAME question", n)
	}
}

func TestChaseWithUpstreamDownKeepsPartialChain(t *testing.T) {
	r, err := resolve.New(loadZones(t), newForwarder(t, deadAddr(t)))
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := r.Exchange(ctx(t), question("out.example.test.", dns.TypeA))
	if err != nil {
		t.Fatalf("the zone answered; the failed chase must not turn it into an error: %v", err)
	}
	if got := rdata(m.Answer); m.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"www.example.net."}) {
		t.Errorf("rcode %d answer %v, want NOERROR and the CNAME", m.Rcode, got)
	}
	// A name outside the zone has no answer at all: an error.
	if _, _, err := r.Exchange(ctx(t), question("www.example.net.", dns.TypeA)); err == nil || !strings.HasPrefix(err.Error(), "resolve: ") {
		t.Errorf("upstream down, outside the zone: err %v, want a resolve: error", err)
	}
}

func TestOutsideZoneWithoutForwarderIsRefused(t *testing.T) {
	r, err := resolve.New(loadZones(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	q := question("www.example.net.", dns.TypeA)
	m, _, err := r.Exchange(ctx(t), q)
	if err != nil {
		t.Fatalf("REFUSED is an answer, not an error: %v", err)
	}
	if m.Rcode != dns.RcodeRefused || m.Id != q.Id || !m.Response || len(m.Question) != 1 || m.Question[0] != q.Question[0] {
		t.Errorf("got %v, want REFUSED to the question", m)
	}
	// A CNAME out of the zone stays partial without a forwarder.
	m, _, err = r.Exchange(ctx(t), question("out.example.test.", dns.TypeA))
	if err != nil || m.Rcode != dns.RcodeSuccess || !slices.Equal(rdata(m.Answer), []string{"www.example.net."}) {
		t.Errorf("CNAME out of the zone without forwarder: %v %v", m, err)
	}
}

func TestQuestionCount(t *testing.T) {
	r, err := resolve.New(loadZones(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	q := question("www.example.test.", dns.TypeA)
	q.Question = append(q.Question, q.Question[0])
	if _, _, err := r.Exchange(ctx(t), q); err == nil {
		t.Error("two questions: want an error")
	}
	q.Question = nil
	if _, _, err := r.Exchange(ctx(t), q); err == nil {
		t.Error("no question: want an error")
	}
}
