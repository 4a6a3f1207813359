package resolve_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/testutil/fakenet"
	"github.com/shardns/shardns/resolverd/resolve"
)

// exchangeFlags asks r for (name, qtype) with the DO, AD and CD bits given.
func exchangeFlags(t *testing.T, r *resolve.Resolver, name string, qtype uint16, do, ad, cd bool) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.AuthenticatedData, q.CheckingDisabled = ad, cd
	q.SetEdns0(1232, do)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, src, err := r.Exchange(ctx, q)
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	if src != "recurse" {
		t.Fatalf("%s: answered by %q, want the iterator", name, src)
	}
	return m
}

func typesIn(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, dns.TypeToString[rr.Header().Rrtype])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func edeOf(m *dns.Msg) (uint16, string, bool) {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e.InfoCode, e.ExtraText, true
			}
		}
	}
	return 0, "", false
}

// TestValidatingRecursion resolves names of the fake Internet from its
// root through Open with DNSSEC on: secure answers with AD, insecure
// without, bogus ones SERVFAIL with the validator's EDE and no records,
// CD=1 the bogus data unvalidated, no DNSSEC records for a query without
// DO; a reload with a trust anchor that matches no root key makes every
// answer bogus, and one back to the right anchor secure again; a reload
// to -dnssec off stops validating.
func TestValidatingRecursion(t *testing.T) {
	n := fakenet.Start(t, fakenet.Options{})
	cfg := resolve.Config{Recurse: true, RootHints: n.RootHints, DNSSEC: true, TrustAnchor: n.TrustAnchor}
	reg := prometheus.NewRegistry()
	withReg := cfg
	withReg.Registerer = reg
	r, err := resolve.Open(withReg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	m := exchangeFlags(t, r, "www.secure.fake.", dns.TypeA, true, false, false)
	if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || !slices.Equal(typesIn(m.Answer), []string{"A", "RRSIG"}) {
		t.Errorf("secure, DO: %s AD=%v %v", dns.RcodeToString[m.Rcode], m.AuthenticatedData, m.Answer)
	}
	m = exchangeFlags(t, r, "www.secure.fake.", dns.TypeA, false, false, false)
	if m.Rcode != dns.RcodeSuccess || !slices.Equal(typesIn(m.Answer), []string{"A"}) {
		t.Errorf("secure, no DO: %s %v, want the A RRset without RRSIGs", dns.RcodeToString[m.Rcode], m.Answer)
	}
	m = exchangeFlags(t, r, "nope.secure.fake.", dns.TypeA, false, false, false)
	if m.Rcode != dns.RcodeNameError || !slices.Equal(typesIn(m.Ns), []string{"SOA"}) {
		t.Errorf("secure NXDOMAIN, no DO: %s authority %v, want the SOA alone", dns.RcodeToString[m.Rcode], m.Ns)
	}
	m = exchangeFlags(t, r, "nope.secure.fake.", dns.TypeA, true, false, false)
	if m.Rcode != dns.RcodeNameError || !m.AuthenticatedData || !slices.Contains(typesIn(m.Ns), "NSEC") {
		t.Errorf("secure NXDOMAIN, DO: %s AD=%v authority %v, want the NSEC proof", dns.RcodeToString[m.Rcode], m.AuthenticatedData, m.Ns)
	}
	m = exchangeFlags(t, r, "www.insecure.fake.", dns.TypeA, true, true, false)
	if m.Rcode != dns.RcodeSuccess || m.AuthenticatedData || len(m.Answer) != 1 {
		t.Errorf("insecure: %s AD=%v %v", dns.RcodeToString[m.Rcode], m.AuthenticatedData, m.Answer)
	}
	for _, tc := range []struct {
		name string
		ede  uint16
	}{
		{"www.bogus.fake.", dns.ExtendedErrorCodeDNSBogus},
		{"www.expired.fake.", dns.ExtendedErrorCodeSignatureExpired},
		{"www.nokey.fake.", dns.ExtendedErrorCodeDNSKEYMissing},
		{"www.nosig.fake.", dns.ExtendedErrorCodeRRSIGsMissing},
	} {
		m = exchangeFlags(t, r, tc.name, dns.TypeA, true, false, false)
		code, text, ok := edeOf(m)
		if m.Rcode != dns.RcodeServerFailure || len(m.Answer)+len(m.Ns) != 0 || !ok || code != tc.ede || text == "" {
			t.Errorf("%s: %s %v EDE %d %q, want SERVFAIL, no records, EDE %d with a reason", tc.name, dns.RcodeToString[m.Rcode], m.Answer, code, text, tc.ede)
		}
		m = exchangeFlags(t, r, tc.name, dns.TypeA, true, false, true)
		if m.Rcode != dns.RcodeSuccess || m.AuthenticatedData || !m.CheckingDisabled || !slices.Contains(typesIn(m.Answer), "A") {
			t.Errorf("%s with CD: %s AD=%v CD=%v %v, want the data unvalidated", tc.name, dns.RcodeToString[m.Rcode], m.AuthenticatedData, m.CheckingDisabled, m.Answer)
		}
	}

	for result, want := range map[string]float64{"secure": 4, "insecure": 1, "bogus": 4, "unchecked": 4} {
		if got := validations(t, reg, result); got != want {
			t.Errorf("shardns_dnssec_validations_total{result=%q} = %v, want %v", result, got, want)
		}
	}

	m = exchangeFlags(t, r, "www.refused.fake.", dns.TypeA, true, false, false)
	if code, _, ok := edeOf(m); m.Rcode != dns.RcodeServerFailure || !ok || code != dns.ExtendedErrorCodeNoReachableAuthority {
		t.Errorf("only server lame: %s EDE %d, want SERVFAIL EDE 22", dns.RcodeToString[m.Rcode], code)
	}
	m = exchangeFlags(t, r, "loop1.cname.fake.", dns.TypeA, true, false, false)
	if code, text, ok := edeOf(m); m.Rcode != dns.RcodeServerFailure || !ok || code != dns.ExtendedErrorCodeOther || !strings.Contains(text, "limit") {
		t.Errorf("CNAME loop: %s EDE %d %q, want SERVFAIL EDE 0 naming the limit", dns.RcodeToString[m.Rcode], code, text)
	}

	wrong := filepath.Join(t.TempDir(), "wrong.ds")
	if err := os.WriteFile(wrong, []byte(". IN DS 4711 13 2 "+strings.Repeat("ab", 32)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.TrustAnchor = wrong
	if err := r.Reload(bad); err != nil {
		t.Fatal(err)
	}
	m = exchangeFlags(t, r, "www.secure.fake.", dns.TypeA, true, false, false)
	if _, _, ok := edeOf(m); m.Rcode != dns.RcodeServerFailure || !ok {
		t.Errorf("anchor matching no root key: %s, want SERVFAIL with an EDE", dns.RcodeToString[m.Rcode])
	}
	if err := r.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	m = exchangeFlags(t, r, "www.secure.fake.", dns.TypeA, true, false, false)
	if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData {
		t.Errorf("the right anchor again: %s AD=%v, want NOERROR AD", dns.RcodeToString[m.Rcode], m.AuthenticatedData)
	}

	broken := cfg
	broken.TrustAnchor = filepath.Join(t.TempDir(), "missing.ds")
	if err := r.Reload(broken); err == nil {
		t.Error("reload with a missing trust anchor file: no error")
	}
	if m = exchangeFlags(t, r, "www.secure.fake.", dns.TypeA, true, false, false); !m.AuthenticatedData {
		t.Error("a failed reload changed the validator")
	}

	off := cfg
	off.DNSSEC, off.TrustAnchor = false, ""
	if err := r.Reload(off); err != nil {
		t.Fatal(err)
	}
	m = exchangeFlags(t, r, "www.expired.fake.", dns.TypeA, true, true, false)
	if m.Rcode != dns.RcodeSuccess || m.AuthenticatedData {
		t.Errorf("DNSSEC off: %s AD=%v, want the data, AD clear", dns.RcodeToString[m.Rcode], m.AuthenticatedData)
	}

	if _, err := resolve.Open(resolve.Config{Recurse: true, RootHints: n.RootHints, TrustAnchor: n.TrustAnchor}); err == nil {
		t.Error("a trust anchor without validation: no error")
	}
}

// validations reads shardns_dnssec_validations_total{result} from reg.
func validations(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "shardns_dnssec_validations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no shardns_dnssec_validations_total{result=%q}", result)
	return 0
}

// BenchmarkValidatedAnswer answers www.secure.fake. A from the iterator's
// cache, with validation (the validator's zone keys cached, the answer's
// signature checked on each call) and without: what validation costs a
// resolution whose records are all cached.
func BenchmarkValidatedAnswer(b *testing.B) {
	n := fakenet.Start(b, fakenet.Options{})
	for _, mode := range []struct {
		name string
		cfg  resolve.Config
	}{
		{"off", resolve.Config{Recurse: true, RootHints: n.RootHints}},
		{"validate", resolve.Config{Recurse: true, RootHints: n.RootHints, DNSSEC: true, TrustAnchor: n.TrustAnchor}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			r, err := resolve.Open(mode.cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			q := new(dns.Msg)
			q.SetQuestion("www.secure.fake.", dns.TypeA)
			q.SetEdns0(1232, true)
			ctx := context.Background()
			if m, _, err := r.Exchange(ctx, q); err != nil || m.Rcode != dns.RcodeSuccess {
				b.Fatalf("warm-up: %v %v", m, err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := r.Exchange(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
