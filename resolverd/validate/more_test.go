package validate

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestCache: a second answer from a zone the validator walked fetches
// nothing; once the keys' TTL passed, the chain is fetched again; with the
// cache off, every call fetches.
func TestCache(t *testing.T) {
	f := buildFixture(t)
	now := testNow
	v := New(Config{Anchors: f.anchors(t), Now: func() time.Time { return now }})
	w := f.world()
	ctx := context.Background()
	m := w.chase("www.secure.example.", dns.TypeA)
	if r := v.Validate(ctx, m.Question[0], m, w); r.Security != Secure {
		t.Fatalf("first: %v %s", r.Security, r.Why)
	}
	first := w.count()
	if first == 0 {
		t.Fatal("the first validation fetched nothing")
	}
	m = w.chase("nope.secure.example.", dns.TypeA)
	if r := v.Validate(ctx, m.Question[0], m, w); r.Security != Secure {
		t.Fatalf("second: %v %s", r.Security, r.Why)
	}
	if got := w.count(); got != first {
		t.Fatalf("the second validation in the same zone fetched %d times", got-first)
	}
	now = now.Add(2 * time.Hour) // past the 3600 s TTL of the DS and DNSKEY RRsets
	if r := v.Validate(ctx, m.Question[0], m, w); r.Security != Secure {
		t.Fatalf("after the TTL: %v %s", r.Security, r.Why)
	}
	if got := w.count(); got != 2*first {
		t.Fatalf("after the TTL the chain took %d fetches, want %d again", got-first, first)
	}

	off := New(Config{Anchors: f.anchors(t), Now: func() time.Time { return testNow }, CacheSize: -1})
	w2 := f.world()
	for i := 1; i <= 2; i++ {
		if r := off.Validate(ctx, m.Question[0], m, w2); r.Security != Secure {
			t.Fatalf("uncached: %v %s", r.Security, r.Why)
		}
		if got := w2.count(); got != i*first {
			t.Fatalf("uncached call %d: %d fetches, want %d", i, got, i*first)
		}
	}
	v.Flush()
	before := w.count()
	v.Validate(ctx, m.Question[0], m, w)
	if w.count() == before {
		t.Fatal("Flush kept the validated keys")
	}
}

// TestCacheBounded: the cache holds no more zones than CacheSize.
func TestCacheBounded(t *testing.T) {
	f := buildFixture(t)
	v := New(Config{Anchors: f.anchors(t), Now: func() time.Time { return testNow }, CacheSize: 2})
	w := f.world()
	for _, name := range []string{"www.secure.example.", "www.signed3.n3.", "host.insecure.example."} {
		m := w.chase(name, dns.TypeA)
		v.Validate(context.Background(), m.Question[0], m, w)
	}
	v.mu.Lock()
	n := len(v.cache)
	v.mu.Unlock()
	if n > 2 {
		t.Fatalf("cache holds %d zones, CacheSize is 2", n)
	}
}

// TestWindow: the validity window widened by the clock skew, both ends.
func TestWindow(t *testing.T) {
	sig := &dns.RRSIG{Inception: uint32(testNow.Add(-time.Hour).Unix()), Expiration: uint32(testNow.Add(time.Hour).Unix())}
	for _, tc := range []struct {
		at   time.Duration
		skew time.Duration
		want uint16
	}{
		{0, time.Minute, 0},
		{time.Hour + 2*time.Minute, 5 * time.Minute, 0},
		{time.Hour + 2*time.Minute, time.Minute, dns.ExtendedErrorCodeSignatureExpired},
		{-time.Hour - 2*time.Minute, 5 * time.Minute, 0},
		{-time.Hour - 2*time.Minute, time.Minute, dns.ExtendedErrorCodeSignatureNotYetValid},
		{-10 * 365 * 24 * time.Hour, time.Minute, dns.ExtendedErrorCodeSignatureNotYetValid},
		{10 * 365 * 24 * time.Hour, time.Minute, dns.ExtendedErrorCodeSignatureExpired},
	} {
		r := window(sig, testNow.Add(tc.at), tc.skew)
		if r.EDE != tc.want || (tc.want == 0) != (r.Security == Secure) {
			t.Errorf("at %v skew %v: %v EDE %d, want EDE %d", tc.at, tc.skew, r.Security, r.EDE, tc.want)
		}
	}
	// The default skew is in force when Config leaves it out.
	if v := New(Config{}); v.skew != DefaultClockSkew {
		t.Fatalf("default skew %v", v.skew)
	}
}

// TestDNAME: a signed DNAME with the unsigned CNAME synthesised from it
// validates; a CNAME that does not follow from the DNAME is bogus.
func TestDNAME(t *testing.T) {
	f := buildFixture(t)
	v := f.validator(t)
	w := f.world()
	build := func(target string) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("www.dn.secure.example.", dns.TypeA)
		d := w.ask("dn.secure.example.", dns.TypeDNAME)
		if len(d.Answer) != 2 {
			t.Fatalf("no signed DNAME:\n%v", d)
		}
		m.Answer = append(m.Answer, d.Answer...)
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: "www.dn.secure.example.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 3600}, Target: target})
		m.Answer = append(m.Answer, w.ask(target, dns.TypeA).Answer...)
		return m
	}
	check1(t, v, w, build("www.signed3.n3."), Secure, 0)
	check1(t, v, w, build("www.secure.example."), Bogus, dns.ExtendedErrorCodeDNSBogus)
}

// failing is a KeySource whose fetches fail.
type failing struct{}

func (failing) Fetch(context.Context, KeyQuery) (*dns.Msg, error) {
	return nil, errors.New("no server answered")
}

// TestFetchError: keys that cannot be fetched leave the answer bogus with
// EDE 22, and the failure is not kept: the next call fetches again.
func TestFetchError(t *testing.T) {
	f := buildFixture(t)
	v := f.validator(t)
	w := f.world()
	m := w.chase("www.secure.example.", dns.TypeA)
	check1(t, v, &world{zones: map[string]*auth{}}, m, Bogus, dns.ExtendedErrorCodeNoReachableAuthority)
	r := v.Validate(context.Background(), m.Question[0], m, failing{})
	if r.Security != Bogus || r.EDE != dns.ExtendedErrorCodeNoReachableAuthority {
		t.Fatalf("failing source: %v EDE %d", r.Security, r.EDE)
	}
	check1(t, v, w, m, Secure, 0)
}

// TestExpires: a secure result bounds how long the answer may be served
// by its TTL, its signature's original TTL and expiry; other results carry
// no bound.
func TestExpires(t *testing.T) {
	f := buildFixture(t)
	v := f.validator(t)
	w := f.world()
	m := w.chase("www.secure.example.", dns.TypeA)
	r := check1(t, v, w, m, Secure, 0)
	if want := testNow.Add(3600 * time.Second); !r.Expires.Equal(want) {
		t.Fatalf("Expires %v, want the TTL's end %v", r.Expires, want)
	}
	m.Answer[0].Header().Ttl = 60
	if r := check1(t, v, w, m, Secure, 0); !r.Expires.Equal(testNow.Add(time.Minute)) {
		t.Fatalf("TTL 60: Expires %v", r.Expires)
	}
	// A TTL above the original TTL is held to the original.
	m.Answer[0].Header().Ttl = 7200
	if r := check1(t, v, w, m, Secure, 0); !r.Expires.Equal(testNow.Add(time.Hour)) {
		t.Fatalf("TTL 7200, original 3600: Expires %v", r.Expires)
	}
	// A signature expiring before the TTL ends bounds it.
	late := New(Config{Anchors: f.anchors(t), Now: func() time.Time { return testNow.Add(7*24*time.Hour - 10*time.Minute) }, ClockSkew: time.Second})
	m.Answer[0].Header().Ttl = 3600
	r = late.Validate(context.Background(), m.Question[0], m, w)
	if r.Security != Secure || !r.Expires.Equal(testNow.Add(7*24*time.Hour)) {
		t.Fatalf("near the signature's expiry: %v %s, Expires %v", r.Security, r.Why, r.Expires)
	}
	// Negative answers are bounded by their proofs.
	m = w.chase("nope.signed3.n3.", dns.TypeA)
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeNSEC3 {
			rr.Header().Ttl = 120
			break
		}
	}
	if r := check1(t, v, w, m, Secure, 0); !r.Expires.Equal(testNow.Add(120 * time.Second)) {
		t.Fatalf("NXDOMAIN with an NSEC3 of TTL 120: Expires %v", r.Expires)
	}
	if r := check1(t, v, w, w.chase("host.insecure.example.", dns.TypeA), Insecure, 0); !r.Expires.IsZero() {
		t.Fatalf("insecure answer with Expires %v", r.Expires)
	}
}

// TestRevokedKey: a key with the REVOKE flag verifies nothing (RFC 5011).
func TestRevokedKey(t *testing.T) {
	k := newKey(t, "example.", dns.ECDSAP256SHA256, true)
	ok := usableKeys([]dns.RR{k.pub})
	revoked := *k.pub
	revoked.Flags |= dns.REVOKE
	if len(ok) != 1 || len(usableKeys([]dns.RR{&revoked})) != 0 {
		t.Fatalf("usable: %d of a valid key, %d of a revoked one", len(ok), len(usableKeys([]dns.RR{&revoked})))
	}
}

// TestConcurrent: one Validator serves many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	f := buildFixture(t)
	v := f.validator(t)
	names := []string{"www.secure.example.", "www.signed3.n3.", "host.insecure.example.", "host.unsupp.example.", "host.expired.example."}
	want := []Security{Secure, Secure, Insecure, Insecure, Bogus}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			w := f.world()
			for i := 0; i < 20; i++ {
				j := (g + i) % len(names)
				m := w.chase(names[j], dns.TypeA)
				if r := v.Validate(context.Background(), m.Question[0], m, w); r.Security != want[j] {
					errs <- names[j] + ": " + r.Security.String() + " " + r.Why
					return
				}
				if i%7 == 0 {
					v.Flush()
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestWalkStopsAtMissingName: the walk toward an unsigned name in a secure
// zone ends at the first name the zone proves absent instead of asking for
// a DS at every label below it.
func TestWalkStopsAtMissingName(t *testing.T) {
	f := buildFixture(t)
	for _, tc := range []struct{ zone, name string }{
		{"secure.example.", "a.b.c.d.e.nope.secure.example."},
		{"signed3.n3.", "a.b.c.d.e.nope.signed3.n3."},
	} {
		v := f.validator(t)
		w := f.world()
		m := new(dns.Msg)
		m.SetQuestion(tc.name, dns.TypeA)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: tc.name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 1}}}
		check1(t, v, w, m, Bogus, dns.ExtendedErrorCodeRRSIGsMissing)
		// DNSKEY and DS of each zone from the root down, and one DS query
		// for nope.<zone>: 2*3 fetches with the root's DNSKEY, plus one.
		if got := w.count(); got != 6 {
			t.Errorf("%s: %d fetches, want 6", tc.name, got)
		}
	}
}

// FuzzValidate feeds responses in wire form, seeded with the fixture's
// answers, to a validator over the fixture: whatever the bytes, Validate
// returns a verdict and never a Secure one for a message the fixture's
// zones did not sign.
func FuzzValidate(f *testing.F) {
	fx := buildFixture(f)
	w := fx.world()
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"www.secure.example.", dns.TypeA}, {"nope.secure.example.", dns.TypeA}, {"x.wild.secure.example.", dns.TypeA},
		{"nope.signed3.n3.", dns.TypeA}, {"x.wild.signed3.n3.", dns.TypeA}, {"host.insecure.example.", dns.TypeA},
		{"host.unsigned.n3.", dns.TypeA}, {"cname.example.", dns.TypeA}, {"b.secure.example.", dns.TypeA},
	} {
		b, err := w.chase(q.name, q.qtype).Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	v := fx.validator(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil || len(m.Question) != 1 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r := v.Validate(ctx, m.Question[0], m, w)
		if r.Security > Bogus {
			t.Fatalf("verdict %d", r.Security)
		}
		if r.Security == Bogus && r.Why == "" {
			t.Fatal("bogus without a reason")
		}
	})
}

// TestCanonicalOrder: RFC 4034 §6.1's example order, and labels whose
// length octet is an upper-case letter's code.
func TestCanonicalOrder(t *testing.T) {
	names := []string{"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.", "z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example."}
	for i := 0; i+1 < len(names); i++ {
		if canonicalCompare(names[i], names[i+1]) >= 0 || canonicalCompare(names[i+1], names[i]) <= 0 {
			t.Errorf("%s should sort before %s", names[i], names[i+1])
		}
	}
	long := strings.Repeat("a", 70) + ".example."
	longer := strings.Repeat("a", 71) + ".example."
	if canonicalCompare(long, longer) >= 0 || canonicalCompare(strings.ToUpper(long), long) != 0 {
		t.Errorf("labels of 70 and 71 octets misordered")
	}
}

// TestAlgorithms: a zone signed with each algorithm the validator supports
// (RFC 8624: 8, 10, 13, 14, 15) validates from its own DS, with NSEC and
// NSEC3, and a tampered answer from it is bogus.
func TestAlgorithms(t *testing.T) {
	for _, alg := range []uint8{dns.RSASHA256, dns.RSASHA512, dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519} {
		for _, nsec3 := range []bool{false, true} {
			z := sign(t, zoneSpec{origin: "alg.test.", alg: alg, nsec3: nsec3, records: soaNS + "www A 192.0.2.1\n"})
			a, err := ParseAnchors(strings.NewReader(z.ds().String()), "alg")
			if err != nil {
				t.Fatal(err)
			}
			v := New(Config{Anchors: a, Now: func() time.Time { return testNow }})
			w := newWorld(z)
			check1(t, v, w, w.chase("www.alg.test.", dns.TypeA), Secure, 0)
			check1(t, v, w, w.chase("nope.alg.test.", dns.TypeA), Secure, 0)
			check1(t, v, w, w.chase("www.alg.test.", dns.TypeTXT), Secure, 0)
			m := w.chase("www.alg.test.", dns.TypeA)
			m.Answer[0].(*dns.A).A[3] = 2
			check1(t, v, w, m, Bogus, dns.ExtendedErrorCodeDNSBogus)
		}
	}
}

// TestNSEC3UnknownHash: a proof made only of NSEC3 records of a hash
// algorithm other than SHA-1 leaves the answer insecure (RFC 5155 §8.1),
// and so does such a proof of an unsigned delegation.
func TestNSEC3UnknownHash(t *testing.T) {
	z := sign(t, zoneSpec{origin: "hash.test.", alg: dns.ECDSAP256SHA256, nsec3: true, hash: 2, records: soaNS + "www A 192.0.2.1\nsub NS ns.sub\n"})
	a, err := ParseAnchors(strings.NewReader(z.ds().String()), "hash")
	if err != nil {
		t.Fatal(err)
	}
	v := New(Config{Anchors: a, Now: func() time.Time { return testNow }})
	w := newWorld(z)
	// Every NSEC3 of the zone, as the test authority cannot hash with an
	// unknown algorithm to pick them.
	all := new(dns.Msg)
	for _, rr := range z.rrs {
		h := rr.Header()
		if h.Rrtype == dns.TypeNSEC3 || h.Rrtype == dns.TypeSOA {
			all.Ns = append(all.Ns, rr)
		}
		if s, ok := rr.(*dns.RRSIG); ok && (s.TypeCovered == dns.TypeNSEC3 || s.TypeCovered == dns.TypeSOA) {
			all.Ns = append(all.Ns, rr)
		}
	}
	m := all.Copy()
	m.SetQuestion("nope.hash.test.", dns.TypeA)
	m.Rcode = dns.RcodeNameError
	check1(t, v, w, m, Insecure, 0)
	// The same records are a proof only where a SHA-1 NSEC3 is alone.
	m.Ns = stripType(m.Ns, dns.TypeNSEC3)
	check1(t, v, w, m, Bogus, dns.ExtendedErrorCodeNSECMissing)

	w.drop = func(zone string, qtype uint16, r *dns.Msg) {
		if qtype == dns.TypeDS && zone == "sub.hash.test." {
			r.Ns = all.Ns
			r.Rcode = dns.RcodeSuccess
		}
	}
	u := new(dns.Msg)
	u.SetQuestion("www.sub.hash.test.", dns.TypeA)
	u.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "www.sub.hash.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 2}}}
	check1(t, v, w, u, Insecure, 0)
}
