package recurse

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// sentTap records the questions the resolver sends, per server.
type sentTap struct {
	mu   sync.Mutex
	sent []string // "server name type", name lower case
}

func (s *sentTap) Exchanged(_ string, server netip.AddrPort, _, _ time.Time, query, _ []byte) {
	m := new(dns.Msg)
	if m.Unpack(query) != nil || len(m.Question) != 1 {
		return
	}
	s.mu.Lock()
	s.sent = append(s.sent, server.Addr().String()+" "+strings.ToLower(m.Question[0].Name)+" "+dns.TypeToString[m.Question[0].Qtype])
	s.mu.Unlock()
}

func (s *sentTap) to(addr netip.Addr) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.sent {
		if a, rest, _ := strings.Cut(l, " "); a == addr.String() {
			out = append(out, rest)
		}
	}
	return out
}

func (s *sentTap) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

func newResolver(t testing.TB, w *world, cfg Config) (*Resolver, *sentTap) {
	t.Helper()
	tap := &sentTap{}
	cfg.Hints, cfg.Tap = w.hints, tap
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, tap
}

func ask(t testing.TB, r *Resolver, name string, qtype uint16) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	return askMsg(t, r, q)
}

// askMsg is ask with the query q, which may carry EDNS.
func askMsg(t testing.TB, r *Resolver, q *dns.Msg) *dns.Msg {
	t.Helper()
	name, qtype := q.Question[0].Name, q.Question[0].Qtype
	q.Id = 777
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := r.Resolve(ctx, q)
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	if m.Id != 777 || m.Question[0] != q.Question[0] || !m.RecursionAvailable || m.Authoritative {
		t.Fatalf("%s: reply header %+v question %v", name, m.MsgHdr, m.Question)
	}
	return m
}

// edeOf renders m's Extended DNS Error as "code text", or "" without one.
func edeOf(m *dns.Msg) string {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return fmt.Sprintf("%d %s", e.InfoCode, e.ExtraText)
			}
		}
	}
	return ""
}

// answers renders m's answer section, owner, type and data.
func answers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		h := rr.Header()
		out = append(out, strings.ToLower(h.Name)+" "+dns.TypeToString[h.Rrtype]+" "+strings.TrimPrefix(rr.String(), h.String()))
	}
	return out
}

func hits(r *Resolver, l string) float64 { return testutil.ToFloat64(r.LimitHits().WithLabelValues(l)) }

func TestIterative(t *testing.T) {
	w := newWorld(t)
	r, tap := newResolver(t, w, Config{})

	t.Run("root to tld to leaf", func(t *testing.T) {
		m := ask(t, r, "WWW.Leaf.test.", dns.TypeA)
		if m.Rcode != dns.RcodeSuccess || !slices.Equal(answers(m), []string{"www.leaf.test. A 192.0.2.1"}) {
			t.Fatalf("got %s %v", dns.RcodeToString[m.Rcode], answers(m))
		}
		if m.Answer[0].Header().Name != "WWW.Leaf.test." {
			t.Errorf("owner %q, want the question's spelling", m.Answer[0].Header().Name)
		}
		// Priming first: ". NS" to the hints.
		if got := tap.to(w.root); len(got) == 0 || got[0] != ". NS" {
			t.Errorf("root was sent %v, want . NS first", got)
		}
		// Asked again: from the cache, no query.
		before := tap.count()
		ask(t, r, "www.leaf.test.", dns.TypeA)
		if tap.count() != before {
			t.Errorf("a second lookup sent %d queries, want 0", tap.count()-before)
		}
	})
	t.Run("cname across zones", func(t *testing.T) {
		m := ask(t, r, "alias.leaf.test.", dns.TypeA)
		want := []string{"alias.leaf.test. CNAME www.other.example.", "www.other.example. A 192.0.2.2"}
		if m.Rcode != dns.RcodeSuccess || !slices.Equal(answers(m), want) {
			t.Fatalf("got %s %v, want %v", dns.RcodeToString[m.Rcode], answers(m), want)
		}
	})
	t.Run("cname then dname", func(t *testing.T) {
		m := ask(t, r, "dalias.leaf.test.", dns.TypeA)
		got := answers(m)
		if m.Rcode != dns.RcodeSuccess || len(got) == 0 || got[len(got)-1] != "www.glueless.test. A 192.0.2.3" || !slices.Contains(got, "dn.other.example. DNAME glueless.test.") {
			t.Fatalf("got %s %v", dns.RcodeToString[m.Rcode], got)
		}
	})
	t.Run("glueless delegation", func(t *testing.T) {
		m := ask(t, r, "www.glueless.test.", dns.TypeA)
		if m.Rcode != dns.RcodeSuccess || !slices.Equal(answers(m), []string{"www.glueless.test. A 192.0.2.3"}) {
			t.Fatalf("got %s %v", dns.RcodeToString[m.Rcode], answers(m))
		}
	})
	t.Run("nxdomain with soa", func(t *testing.T) {
		m := ask(t, r, "nope.leaf.test.", dns.TypeA)
		if m.Rcode != dns.RcodeNameError || len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA || m.Ns[0].Header().Name != "leaf.test." {
			t.Fatalf("got %s answer %v authority %v", dns.RcodeToString[m.Rcode], m.Answer, m.Ns)
		}
		if ttl := m.Ns[0].Header().Ttl; ttl > 60 {
			t.Errorf("SOA TTL %d, want at most its MINIMUM 60 (RFC 2308)", ttl)
		}
	})
	t.Run("nodata with soa", func(t *testing.T) {
		m := ask(t, r, "www.leaf.test.", dns.TypeAAAA)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Fatalf("got %s answer %v authority %v", dns.RcodeToString[m.Rcode], m.Answer, m.Ns)
		}
	})
	t.Run("out of bailiwick glue ignored", func(t *testing.T) {
		m := ask(t, r, "www.sub.evil.test.", dns.TypeA)
		if m.Rcode != dns.RcodeSuccess || !slices.Equal(answers(m), []string{"www.sub.evil.test. A 192.0.2.4"}) {
			t.Fatalf("got %s %v", dns.RcodeToString[m.Rcode], answers(m))
		}
		if got := w.evil.questions(); len(got) == 0 {
			t.Fatal("the evil server was never asked: the test proves nothing")
		}
		if got := w.poison.questions(); len(got) != 0 {
			t.Errorf("the poison glue was used: its server got %v", got)
		}
		m = ask(t, r, "ns.victim.example.", dns.TypeA)
		if !slices.Equal(answers(m), []string{"ns.victim.example. A " + w.leaf.String()}) {
			t.Errorf("ns.victim.example: %v, want the real address", answers(m))
		}
	})
	t.Run("truncated over udp, tcp", func(t *testing.T) {
		m := ask(t, r, "www.tc.test.", dns.TypeA)
		if m.Rcode != dns.RcodeSuccess || !slices.Equal(answers(m), []string{"www.tc.test. A 192.0.2.5"}) {
			t.Fatalf("got %s %v", dns.RcodeToString[m.Rcode], answers(m))
		}
		if got := w.tc.questions(); !slices.Contains(got, "tcp www.tc.test. A") {
			t.Errorf("tc server got %v, want the name over tcp", got)
		}
	})
	t.Run("edns fallback", func(t *testing.T) {
		m := ask(t, r, "www.old.test.", dns.TypeA)
		if m.Rcode != dns.RcodeSuccess || !slices.Equal(answers(m), []string{"www.old.test. A 192.0.2.9"}) {
			t.Fatalf("got %s %v", dns.RcodeToString[m.Rcode], answers(m))
		}
		n := len(w.noEDNS.questions())
		ask(t, r, "other.old.test.", dns.TypeA)
		if got := len(w.noEDNS.questions()) - n; got != 1 {
			t.Errorf("the next name cost %d queries, want 1: the server's lack of EDNS is remembered", got)
		}
	})
	t.Run("lame server avoided", func(t *testing.T) {
		for _, n := range []string{"www.lame.test.", "mail.lame.test."} {
			m := ask(t, r, n, dns.TypeA)
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
				t.Fatalf("%s: got %s %v", n, dns.RcodeToString[m.Rcode], answers(m))
			}
		}
		if got := w.refuser.questions(); len(got) > 1 {
			t.Errorf("the refusing server was asked %d times (%v), want at most once", len(got), got)
		}
		if !r.srv.isLame("lame.test.", w.refuser.ip, time.Now()) && len(w.refuser.questions()) == 1 {
			t.Error("the refusing server is not remembered as lame")
		}
	})
}

// TestQNAMEMinimisation: each server is sent one label more than the
// zone it serves, as the deep.test server receives and the resolver sent.
func TestQNAMEMinimisation(t *testing.T) {
	w := newWorld(t)
	r, tap := newResolver(t, w, Config{})
	m := ask(t, r, "a.b.c.deep.test.", dns.TypeA)
	if !slices.Equal(answers(m), []string{"a.b.c.deep.test. A 192.0.2.6"}) {
		t.Fatalf("got %s %v", dns.RcodeToString[m.Rcode], answers(m))
	}
	want := []string{"udp c.deep.test. A", "udp b.c.deep.test. A", "udp a.b.c.deep.test. A"}
	received := w.deep.questions()
	if got := lowerNames(received); !slices.Equal(got, want) {
		t.Errorf("deep.test's server received %v, want %v", got, want)
	}
	// 0x20: the names arrive in mixed case (all 26 letters lower case
	// by chance: one in 2^26).
	if strings.Join(received, " ") == strings.Join(want, " ") {
		t.Errorf("deep.test's server received %v: no 0x20 case", received)
	}
	if got := tap.to(w.root); slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "deep") }) {
		t.Errorf("the root was sent %v: more than test.", got)
	}
	if got := tap.to(w.tld); !slices.Contains(got, "deep.test. A") || slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "c.deep") }) {
		t.Errorf("the tld was sent %v, want deep.test. only", got)
	}

	// Off: the full name everywhere.
	w2 := newWorld(t)
	r2, tap2 := newResolver(t, w2, Config{NoQNAMEMinimisation: true})
	ask(t, r2, "a.b.c.deep.test.", dns.TypeA)
	if got := tap2.to(w2.root); !slices.Contains(got, "a.b.c.deep.test. A") {
		t.Errorf("without minimisation the root was sent %v", got)
	}
}

// TestMinimisedStepsRemembered: fresh names under a wildcard whose
// parents are empty non-terminals cost one query each, once the first
// name has shown the names above to exist: the answers for the minimised
// steps are kept and not asked again.
func TestMinimisedStepsRemembered(t *testing.T) {
	w := newWorld(t)
	r, _ := newResolver(t, w, Config{})
	ask(t, r, "first.w.c.deep.test.", dns.TypeA)
	before := len(w.deep.questions())
	const fresh = 10
	for i := range fresh {
		name := fmt.Sprintf("h%d.w.c.deep.test.", i)
		m := ask(t, r, name, dns.TypeA)
		if want := []string{name + " A 192.0.2.7"}; !slices.Equal(answers(m), want) {
			t.Fatalf("%s: %s %v, want %v", name, dns.RcodeToString[m.Rcode], answers(m), want)
		}
	}
	if got := w.deep.questions()[before:]; len(got) != fresh {
		t.Errorf("%d fresh names sent deep.test's server %d queries, want %d: %v", fresh, len(got), fresh, lowerNames(got))
	}
}

// lowerNames lowers the name in each "proto name type" line.
func lowerNames(s []string) []string {
	out := make([]string, len(s))
	for i, l := range s {
		f := strings.Fields(l)
		f[1] = strings.ToLower(f[1])
		out[i] = strings.Join(f, " ")
	}
	return out
}

// TestLimits: each limit, hit, ends the resolution with SERVFAIL, with
// an Extended DNS Error naming it for a query with EDNS, and is counted
// under its name, and only it.
func TestLimits(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		limit  string
		name   string
		limits Limits
	}{
		{LimitCNAMEs, "loopa.leaf.test.", Limits{}},
		{LimitDepth, "www.loop1.test.", Limits{}},
		{LimitNSLookups, "www.nxns.test.", Limits{}},
		{LimitReferrals, "www.leaf.test.", Limits{Referrals: 1}},
		{LimitQueries, "www.leaf.test.", Limits{Queries: 2}},
		{LimitTime, "www.slow.test.", Limits{Budget: 300 * time.Millisecond}},
	} {
		t.Run(tc.limit, func(t *testing.T) {
			r, tap := newResolver(t, w, Config{Limits: tc.limits})
			q := new(dns.Msg)
			q.SetQuestion(tc.name, dns.TypeA)
			q.SetEdns0(1232, false)
			m := askMsg(t, r, q)
			if m.Rcode != dns.RcodeServerFailure {
				t.Fatalf("%s: %s %v, want SERVFAIL", tc.name, dns.RcodeToString[m.Rcode], answers(m))
			}
			if got, want := edeOf(m), "0 resolution limit hit: "+tc.limit; got != want {
				t.Errorf("EDE %q, want %q", got, want)
			}
			for _, l := range []string{LimitReferrals, LimitNSLookups, LimitCNAMEs, LimitQueries, LimitTime, LimitDepth} {
				want := 0.0
				if l == tc.limit {
					want = 1
				}
				if got := hits(r, l); got != want {
					t.Errorf("limit %s counted %v, want %v", l, got, want)
				}
			}
			if n, max := tap.count(), r.limits.Queries; n > max {
				t.Errorf("%d queries sent, above the limit %d", n, max)
			}
		})
	}
}

// TestHintsParse: hints files are read as named.root is written; bad
// ones are refused with an error naming the file.
func TestHintsParse(t *testing.T) {
	h, err := ParseHints(strings.NewReader(". 3600 NS A.Root.\n. NS b.root.\na.root. A 127.0.0.1\nb.root. AAAA ::1\nb.root. A 127.0.0.2\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Servers) != 2 || h.Servers[0].Name != "a.root." || len(h.Servers[1].Addrs) != 2 {
		t.Fatalf("%+v", h.Servers)
	}
	for _, bad := range []string{
		"",
		". NS a.root.\n",
		"x. NS a.root.\na.root. A 127.0.0.1\n",
		". NS a.root.\na.root. A 127.0.0.1\nc.root. A 127.0.0.3\n",
		". NS a.root.\na.root. MX 1 b.\n",
		". NS a.root.\na.root. A 300.0.0.1\n",
	} {
		if _, err := ParseHints(strings.NewReader(bad), "bad.hints"); err == nil || !strings.Contains(err.Error(), "bad.hints") {
			t.Errorf("%q: error %v, want one naming the file", bad, err)
		}
	}
	if d := DefaultHints(); len(d.Servers) != 13 || d.Servers[0].Addrs[0] != netip.MustParseAddr("198.41.0.4") {
		t.Errorf("default hints %+v", d.Servers)
	}
}

func FuzzParseHints(f *testing.F) {
	f.Add(". 3600 NS a.root.\na.root. A 127.0.0.1\n")
	f.Add(". NS a.root.\na.root. AAAA ::1\n$TTL 5\n")
	f.Add("$INCLUDE /etc/passwd\n")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHints(strings.NewReader(s), "fuzz")
		if err == nil && (len(h.Servers) == 0 || len(h.Servers[0].Addrs) == 0) {
			t.Fatalf("accepted hints without a server address: %+v", h)
		}
	})
}

// TestMemCacheBounded: the cache holds at most its bound, and forgets
// at the TTL, ageing TTLs on the way.
func TestMemCacheBounded(t *testing.T) {
	c := NewMemCache(10)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	for i := range 100 {
		m := new(dns.Msg)
		rr, _ := dns.NewRR("a.test. 100 A 192.0.2.1")
		m.Answer = []dns.RR{rr}
		name := string(binary.BigEndian.AppendUint16(nil, uint16(i)))
		c.PutAnswer(name, dns.TypeA, m, 100*time.Second)
		c.PutDelegation(&Delegation{Zone: name}, time.Minute)
	}
	if d, a := c.Len(); d > 10 || a > 10 {
		t.Fatalf("holds %d delegations, %d answers; bound 10", d, a)
	}
	m := new(dns.Msg)
	rr, _ := dns.NewRR("b.test. 100 A 192.0.2.1")
	m.Answer = []dns.RR{rr}
	c.PutAnswer("b.test.", dns.TypeA, m, 100*time.Second)
	now = now.Add(40 * time.Second)
	got, ok := c.Answer("b.test.", dns.TypeA)
	if !ok || got.Answer[0].Header().Ttl != 60 {
		t.Fatalf("after 40 s: %v %v, want TTL 60", ok, got)
	}
	now = now.Add(61 * time.Second)
	if _, ok := c.Answer("b.test.", dns.TypeA); ok {
		t.Fatal("an answer outlived its TTL")
	}
}

// TestGlueOnlyInBailiwick: of a referral's addresses, only those within
// the zone of the server that sent it are taken.
func TestGlueOnlyInBailiwick(t *testing.T) {
	m := new(dns.Msg)
	for _, s := range []string{"sub.zone.test. 300 NS ns.sub.zone.test.", "sub.zone.test. 300 NS ns.elsewhere.example."} {
		rr, _ := dns.NewRR(s)
		m.Ns = append(m.Ns, rr)
	}
	for _, s := range []string{"ns.sub.zone.test. 300 A 192.0.2.1", "ns.elsewhere.example. 300 A 192.0.2.66", "unrelated.zone.test. 300 A 192.0.2.67"} {
		rr, _ := dns.NewRR(s)
		m.Extra = append(m.Extra, rr)
	}
	x := &run{}
	d := x.delegationFrom(m, &Delegation{Zone: "zone.test."})
	if d.Zone != "sub.zone.test." || len(d.NS) != 2 || d.TTL != 300 {
		t.Fatalf("delegation %+v", d)
	}
	if len(d.Addrs) != 1 || !slices.Equal(d.Addrs["ns.sub.zone.test."], []netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
		t.Errorf("glue taken %v, want ns.sub.zone.test's alone", d.Addrs)
	}
}

// BenchmarkLookup resolves www.leaf.test through the world: cached (the
// iterator's cache answers) and cold (a fresh cache each time: priming,
// root, TLD and leaf are asked; the servers' RTTs are remembered).
func BenchmarkLookup(b *testing.B) {
	w := newWorld(b)
	ctx := context.Background()
	b.Run("cached", func(b *testing.B) {
		r, _ := newResolver(b, w, Config{})
		if _, err := r.Lookup(ctx, "www.leaf.test.", dns.TypeA); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Lookup(ctx, "www.leaf.test.", dns.TypeA); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		r, tap := newResolver(b, w, Config{})
		b.ReportAllocs()
		for b.Loop() {
			r.cache = NewMemCache(0)
			if _, err := r.Lookup(ctx, "www.leaf.test.", dns.TypeA); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(tap.count())/float64(b.N), "queries/op")
	})
}

// TestLookupZonesWalked: Lookup hands back the zone cuts it walked, root
// first, with their servers, for a validator to fetch DS and DNSKEY of;
// a second lookup under the same cuts walks none.
func TestLookupZonesWalked(t *testing.T) {
	w := newWorld(t)
	r, _ := newResolver(t, w, Config{})
	ctx := context.Background()
	res, err := r.Lookup(ctx, "www.leaf.test.", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	var zones []string
	for _, d := range res.Zones {
		zones = append(zones, d.Zone)
	}
	if !slices.Equal(zones, []string{".", "test.", "leaf.test."}) {
		t.Fatalf("zones walked %v", zones)
	}
	if leaf := res.Zones[2]; !slices.Equal(leaf.NS, []string{"ns1.leaf.test."}) || !slices.Equal(leaf.Addrs["ns1.leaf.test."], []netip.Addr{w.leaf}) {
		t.Errorf("leaf.test cut %+v", leaf)
	}
	res, err = r.Lookup(ctx, "leaf.test.", dns.TypeSOA)
	if err != nil || len(res.Zones) != 0 || len(res.Msg.Answer) != 1 {
		t.Fatalf("second lookup: %v %+v", err, res)
	}
	// DS is asked of the parent: test.'s server, which has none for
	// leaf.test (NODATA with test.'s SOA).
	res, err = r.Lookup(ctx, "leaf.test.", dns.TypeDS)
	if err != nil || res.Msg.Rcode != dns.RcodeSuccess || len(res.Msg.Ns) != 1 || res.Msg.Ns[0].Header().Name != "test." {
		t.Fatalf("DS: %v %v", err, res.Msg)
	}
}

// TestPrimingFallsBackToHints: a root whose priming answer gives no
// address for its servers is used from the hints.
func TestPrimingFallsBackToHints(t *testing.T) {
	ip := loopback(t)
	rec := startRecorder(t, ip, func(_ string, q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		n := strings.ToLower(q.Question[0].Name)
		switch {
		case n == "." && q.Question[0].Qtype == dns.TypeNS:
			rr, _ := dns.NewRR(". 300 NS elsewhere.invalid.")
			m.Answer = append(m.Answer, rr)
		case n == "www.x." && q.Question[0].Qtype == dns.TypeA:
			rr, _ := dns.NewRR("www.x. 300 A 192.0.2.77")
			m.Answer = append(m.Answer, rr)
		case n == "x.":
		default:
			m.Rcode = dns.RcodeNameError
		}
		return m
	})
	r, err := New(Config{Hints: &Hints{Servers: []HintServer{{Name: "h.", Addrs: []netip.Addr{ip}}}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Lookup(context.Background(), "www.x.", dns.TypeA)
	if err != nil || !slices.Equal(answers(res.Msg), []string{"www.x. A 192.0.2.77"}) {
		t.Fatalf("%v %v", err, res)
	}
	if got := lowerNames(rec.questions()); len(got) == 0 || got[0] != "udp . NS" {
		t.Errorf("the root got %v, want priming first", got)
	}
}
