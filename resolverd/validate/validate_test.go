package validate

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fixture is a signed namespace: a root, TLDs and leaf zones covering every
// case the validator tells apart.
type fixture struct {
	root   *signed
	zones  []*signed
	plain  map[string][]dns.RR // unsigned zones
	secure *signed             // secure.example., algorithm 15, NSEC
}

var (
	fixtureOnce sync.Once
	fixtureVal  *fixture
)

const soaNS = `
@ SOA ns host 1 3600 600 86400 300
@ NS ns
ns A 192.0.2.53
`

// buildFixture signs the zones bottom-up, each parent holding its
// children's DS records.
func buildFixture(t testing.TB) *fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		f := &fixture{plain: map[string][]dns.RR{}}
		dsOf := func(owner string, z *signed) string {
			d := z.ds()
			d.Hdr.Name = owner
			return d.String() + "\n"
		}
		f.secure = sign(t, zoneSpec{origin: "secure.example.", alg: dns.ED25519, records: soaNS + `
www A 192.0.2.10
www TXT "secure"
*.wild A 192.0.2.20
real.wild A 192.0.2.21
a.b A 192.0.2.30
alias CNAME www
dn DNAME signed3.n3.
`})
		unsupp := sign(t, zoneSpec{origin: "unsupp.example.", alg: dns.RSASHA1, records: soaNS + "host A 192.0.2.41\n"})
		expired := sign(t, zoneSpec{origin: "expired.example.", alg: dns.ECDSAP256SHA256, records: soaNS + "host A 192.0.2.42\n",
			inception: testNow.Add(-30 * 24 * time.Hour), expiration: testNow.Add(-24 * time.Hour)})
		future := sign(t, zoneSpec{origin: "future.example.", alg: dns.ECDSAP256SHA256, records: soaNS + "host A 192.0.2.43\n",
			inception: testNow.Add(24 * time.Hour), expiration: testNow.Add(30 * 24 * time.Hour)})
		mismatch := sign(t, zoneSpec{origin: "mismatch.example.", alg: dns.ECDSAP256SHA256, records: soaNS + "host A 192.0.2.44\n"})
		other := sign(t, zoneSpec{origin: "mismatch.example.", alg: dns.ECDSAP256SHA256, records: soaNS})
		sha1 := sign(t, zoneSpec{origin: "sha1.example.", alg: dns.ECDSAP256SHA256, records: soaNS + "host A 192.0.2.46\n"})
		sha1ignored := sign(t, zoneSpec{origin: "sha1ignored.example.", alg: dns.ECDSAP256SHA256, records: soaNS + "host A 192.0.2.47\n"})
		baddigest := sign(t, zoneSpec{origin: "baddigest.example.", alg: dns.ECDSAP256SHA256, records: soaNS + "host A 192.0.2.49\n"})
		gost := sign(t, zoneSpec{origin: "gost.example.", alg: dns.ECDSAP256SHA256, records: soaNS + "host A 192.0.2.48\n"})
		dsDigest := func(owner string, z *signed, digest uint8) string {
			d := z.ksk.pub.ToDS(digest)
			d.Hdr.Name, d.Hdr.Ttl = owner, 3600
			return d.String() + "\n"
		}
		iter := sign(t, zoneSpec{origin: "iter.example.", alg: dns.ECDSAP256SHA256, records: soaNS + "host A 192.0.2.45\n", nsec3: true, iter: 100, salt: "01"})
		example := sign(t, zoneSpec{origin: "example.", alg: dns.RSASHA256, records: soaNS + `
secure NS ns.secure
insecure NS ns.insecure
ns.insecure A 192.0.2.54
unsupp NS ns.unsupp
expired NS ns.expired
future NS ns.future
mismatch NS ns.mismatch
iter NS ns.iter
sha1 NS ns.sha1
sha1ignored NS ns.sha1ignored
gost NS ns.gost
baddigest NS ns.baddigest
cname CNAME www.secure.example.
toinsecure CNAME host.insecure.example.
` + dsOf("secure", f.secure) + dsOf("unsupp", unsupp) + dsOf("expired", expired) + dsOf("future", future) + dsOf("mismatch", other) + dsOf("iter", iter) +
			dsDigest("sha1", sha1, dns.SHA1) + dsDigest("sha1ignored", sha1ignored, dns.SHA1) + dsDigest("sha1ignored", other, dns.SHA256) +
			fmt.Sprintf("gost DS %d 13 3 %s\n", gost.ksk.pub.KeyTag(), strings.Repeat("ab", 32)) +
			fmt.Sprintf("baddigest DS %d 13 2 %s\n", baddigest.ksk.pub.KeyTag(), strings.Repeat("ab", 32))})
		signed3 := sign(t, zoneSpec{origin: "signed3.n3.", alg: dns.RSASHA256, records: soaNS + `
www A 192.0.2.60
*.wild A 192.0.2.61
real.wild A 192.0.2.63
a.b A 192.0.2.62
`, nsec3: true, iter: 5, salt: "AABB"})
		n3 := sign(t, zoneSpec{origin: "n3.", alg: dns.ECDSAP256SHA256, records: soaNS + `
signed3 NS ns.signed3
unsigned NS ns.unsigned
` + dsOf("signed3", signed3), nsec3: true, optOut: true})
		f.root = sign(t, zoneSpec{origin: ".", alg: dns.ECDSAP256SHA256, records: `
@ SOA a.root-servers.net. host. 1 3600 600 86400 300
@ NS a.root-servers.net.
example. NS ns.example.
n3. NS ns.n3.
other. NS ns.other.
` + dsOf("example.", example) + dsOf("n3.", n3)})
		f.zones = []*signed{f.root, example, f.secure, unsupp, expired, future, mismatch, iter, n3, signed3, sha1, sha1ignored, gost, baddigest}
		for _, z := range []string{"insecure.example.", "unsigned.n3.", "other."} {
			f.plain[z] = parseRecords(t, z, soaNS+"host A 192.0.2.40\n")
		}
		fixtureVal = f
	})
	if fixtureVal == nil {
		t.Fatal("fixture not built")
	}
	return fixtureVal
}

// world returns a fresh KeySource over the fixture.
func (f *fixture) world() *world {
	w := newWorld(f.zones...)
	for z, rrs := range f.plain {
		w.add(z, rrs)
	}
	return w
}

// anchors trusts the fixture's root KSK.
func (f *fixture) anchors(t testing.TB) *Anchors {
	t.Helper()
	a, err := ParseAnchors(strings.NewReader(f.root.ds().String()), "fixture")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (f *fixture) validator(t testing.TB) *Validator {
	return New(Config{Anchors: f.anchors(t), Now: func() time.Time { return testNow }})
}

// chase asks qname/qtype, following CNAMEs across zones as a resolver
// assembles them into one response.
func (w *world) chase(qname string, qtype uint16) *dns.Msg {
	out := new(dns.Msg)
	out.SetQuestion(dns.Fqdn(qname), qtype)
	name := canonical(qname)
	for i := 0; i < 8; i++ {
		m := w.ask(name, qtype)
		out.Answer = append(out.Answer, m.Answer...)
		out.Ns, out.Rcode = m.Ns, m.Rcode
		next := ""
		for _, rr := range m.Answer {
			if c, ok := rr.(*dns.CNAME); ok && canonical(c.Hdr.Name) == name && qtype != dns.TypeCNAME {
				next = canonical(c.Target)
			}
			if rr.Header().Rrtype == qtype && canonical(rr.Header().Name) == name {
				next = ""
				break
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	return out
}

func check1(t *testing.T, v *Validator, w *world, m *dns.Msg, want Security, ede uint16) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := v.Validate(ctx, m.Question[0], m, w)
	if r.Security != want || r.EDE != ede {
		t.Fatalf("%s/%s: got %v EDE %d (%s), want %v EDE %d\n%v", m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], r.Security, r.EDE, r.Why, want, ede, m)
	}
	return r
}

func TestSecure(t *testing.T) {
	f := buildFixture(t)
	cases := []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"www.secure.example.", dns.TypeA, dns.RcodeSuccess},       // positive, ED25519 under RSA under ECDSA
		{"nope.secure.example.", dns.TypeA, dns.RcodeNameError},    // NXDOMAIN, NSEC
		{"www.secure.example.", dns.TypeAAAA, dns.RcodeSuccess},    // NODATA, NSEC
		{"b.secure.example.", dns.TypeA, dns.RcodeSuccess},         // NODATA at an empty non-terminal, NSEC
		{"x.wild.secure.example.", dns.TypeA, dns.RcodeSuccess},    // wildcard answer, NSEC
		{"x.y.wild.secure.example.", dns.TypeA, dns.RcodeSuccess},  // wildcard two labels down
		{"x.wild.secure.example.", dns.TypeTXT, dns.RcodeSuccess},  // wildcard NODATA, NSEC
		{"www.signed3.n3.", dns.TypeA, dns.RcodeSuccess},           // positive, NSEC3 zone
		{"nope.signed3.n3.", dns.TypeA, dns.RcodeNameError},        // NXDOMAIN, NSEC3
		{"deeper.nope.signed3.n3.", dns.TypeA, dns.RcodeNameError}, // NXDOMAIN below a missing name
		{"www.signed3.n3.", dns.TypeMX, dns.RcodeSuccess},          // NODATA, NSEC3
		{"b.signed3.n3.", dns.TypeA, dns.RcodeSuccess},             // NODATA at an empty non-terminal, NSEC3
		{"x.wild.signed3.n3.", dns.TypeA, dns.RcodeSuccess},        // wildcard answer, NSEC3
		{"x.wild.signed3.n3.", dns.TypeTXT, dns.RcodeSuccess},      // wildcard NODATA, NSEC3
		{"cname.example.", dns.TypeA, dns.RcodeSuccess},            // CNAME across zones
		{"alias.secure.example.", dns.TypeA, dns.RcodeSuccess},     // CNAME within a zone
		{"nothere.example.", dns.TypeA, dns.RcodeNameError},        // NXDOMAIN in the RSA zone
		{"secure.example.", dns.TypeDS, dns.RcodeSuccess},          // the DS RRset itself
		{"insecure.example.", dns.TypeDS, dns.RcodeSuccess},        // DS NODATA at an unsigned delegation
		{"nope.", dns.TypeA, dns.RcodeNameError},                   // NXDOMAIN at the root
		{"secure.example.", dns.TypeDNSKEY, dns.RcodeSuccess},      // a DNSKEY RRset
	}
	v := f.validator(t)
	for _, tc := range cases {
		t.Run(tc.name+dns.TypeToString[tc.qtype], func(t *testing.T) {
			w := f.world()
			m := w.chase(tc.name, tc.qtype)
			if m.Rcode != tc.rcode {
				t.Fatalf("fixture answered %s, want %s:\n%v", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode], m)
			}
			if tc.qtype == dns.TypeA && tc.rcode == dns.RcodeSuccess && len(m.Answer) == 0 && !strings.HasPrefix(tc.name, "b.") {
				t.Fatalf("fixture gave no answer:\n%v", m)
			}
			check1(t, v, w, m, Secure, 0)
		})
	}
}

func TestInsecure(t *testing.T) {
	f := buildFixture(t)
	cases := []struct {
		name string
		ede  uint16
	}{
		{"host.insecure.example.", 0}, // no DS, proven by NSEC
		{"host.unsigned.n3.", 0},      // no DS, in an NSEC3 opt-out span
		{"host.other.", 0},            // no DS at the root, NSEC
		{"toinsecure.example.", 0},    // a secure CNAME into an insecure zone
		{"host.unsupp.example.", dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm},
		{"host.gost.example.", dns.ExtendedErrorCodeUnsupportedDSDigestType},
	}
	v := f.validator(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := f.world()
			m := w.chase(tc.name, dns.TypeA)
			if len(m.Answer) == 0 {
				t.Fatalf("fixture gave no answer:\n%v", m)
			}
			check1(t, v, w, m, Insecure, tc.ede)
		})
	}
	t.Run("nsec3 iterations", func(t *testing.T) {
		w := f.world()
		m := w.chase("nope.iter.example.", dns.TypeA)
		check1(t, v, w, m, Insecure, dns.ExtendedErrorCodeUnsupportedNSEC3IterValue)
		// The positive answer of the same zone stays secure: only proofs
		// need the NSEC3 records.
		check1(t, v, w, w.chase("host.iter.example.", dns.TypeA), Secure, 0)
	})
}

// stripType removes records of type t (and their RRSIGs) from a section.
func stripType(section []dns.RR, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range section {
		if rr.Header().Rrtype == t {
			continue
		}
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == t {
			continue
		}
		out = append(out, rr)
	}
	return out
}

func stripSigs(section []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range section {
		if rr.Header().Rrtype != dns.TypeRRSIG {
			out = append(out, rr)
		}
	}
	return out
}

func TestBogus(t *testing.T) {
	f := buildFixture(t)
	www := func(w *world) *dns.Msg { return w.chase("www.secure.example.", dns.TypeA) }
	cases := []struct {
		name string
		msg  func(w *world) *dns.Msg
		ede  uint16
	}{
		{"tampered data", func(w *world) *dns.Msg {
			m := www(w)
			m.Answer[0].(*dns.A).A[3] = 99
			return m
		}, dns.ExtendedErrorCodeDNSBogus},
		{"wrong key", func(w *world) *dns.Msg {
			m := www(w)
			k := newKey(t, "secure.example.", dns.ED25519, false)
			m.Answer = append(stripSigs(m.Answer), signSet(t, stripSigs(m.Answer), "secure.example.", k, testNow.Add(-time.Hour), testNow.Add(time.Hour)))
			return m
		}, dns.ExtendedErrorCodeDNSKEYMissing},
		{"missing RRSIG", func(w *world) *dns.Msg {
			m := www(w)
			m.Answer = stripSigs(m.Answer)
			return m
		}, dns.ExtendedErrorCodeRRSIGsMissing},
		{"missing DNSKEY", func(w *world) *dns.Msg {
			w.drop = func(zone string, qtype uint16, m *dns.Msg) {
				if qtype == dns.TypeDNSKEY && zone == "secure.example." {
					m.Answer = nil
				}
			}
			return www(w)
		}, dns.ExtendedErrorCodeDNSKEYMissing},
		{"unsigned DNSKEY", func(w *world) *dns.Msg {
			w.drop = func(zone string, qtype uint16, m *dns.Msg) {
				if qtype == dns.TypeDNSKEY && zone == "secure.example." {
					m.Answer = stripSigs(m.Answer)
				}
			}
			return www(w)
		}, dns.ExtendedErrorCodeRRSIGsMissing},
		{"stripped DS", func(w *world) *dns.Msg {
			w.drop = func(zone string, qtype uint16, m *dns.Msg) {
				if qtype == dns.TypeDS && zone == "secure.example." {
					m.Answer = nil
				}
			}
			return www(w)
		}, dns.ExtendedErrorCodeNSECMissing},
		{"SHA-1 DS ignored beside a SHA-256 one", func(w *world) *dns.Msg { return w.chase("host.sha1ignored.example.", dns.TypeA) }, dns.ExtendedErrorCodeDNSKEYMissing},
		{"DS digest mismatch", func(w *world) *dns.Msg { return w.chase("host.baddigest.example.", dns.TypeA) }, dns.ExtendedErrorCodeDNSKEYMissing},
		{"DS mismatch", func(w *world) *dns.Msg { return w.chase("host.mismatch.example.", dns.TypeA) }, dns.ExtendedErrorCodeDNSKEYMissing},
		{"expired", func(w *world) *dns.Msg { return w.chase("host.expired.example.", dns.TypeA) }, dns.ExtendedErrorCodeSignatureExpired},
		{"not yet valid", func(w *world) *dns.Msg { return w.chase("host.future.example.", dns.TypeA) }, dns.ExtendedErrorCodeSignatureNotYetValid},
		{"NXDOMAIN without NSEC", func(w *world) *dns.Msg {
			m := w.chase("nope.secure.example.", dns.TypeA)
			m.Ns = stripType(m.Ns, dns.TypeNSEC)
			return m
		}, dns.ExtendedErrorCodeNSECMissing},
		{"NXDOMAIN for a name that exists", func(w *world) *dns.Msg {
			m := w.chase("nope.secure.example.", dns.TypeA)
			m.Question[0].Name = "www.secure.example."
			return m
		}, dns.ExtendedErrorCodeNSECMissing},
		{"NODATA for a type that exists", func(w *world) *dns.Msg {
			m := w.chase("www.secure.example.", dns.TypeAAAA)
			m.Question[0].Qtype = dns.TypeTXT
			return m
		}, dns.ExtendedErrorCodeNSECMissing},
		{"NSEC3 NXDOMAIN for a name that exists", func(w *world) *dns.Msg {
			m := w.chase("nope.signed3.n3.", dns.TypeA)
			m.Question[0].Name = "www.signed3.n3."
			return m
		}, dns.ExtendedErrorCodeNSECMissing},
		{"NSEC3 NXDOMAIN without wildcard proof", func(w *world) *dns.Msg {
			m := w.chase("nope.signed3.n3.", dns.TypeA)
			m.Ns = m.Ns[:len(m.Ns)-2] // the last NSEC3 and its RRSIG: the wildcard's
			return m
		}, dns.ExtendedErrorCodeNSECMissing},
		{"wildcard without proof", func(w *world) *dns.Msg {
			m := w.chase("x.wild.secure.example.", dns.TypeA)
			m.Ns = nil
			return m
		}, dns.ExtendedErrorCodeNSECMissing},
		{"wildcard answer for a name that exists", func(w *world) *dns.Msg {
			m := w.chase("x.wild.secure.example.", dns.TypeA)
			// The wildcard's signature verifies for any name it could
			// expand to; the proof must show real.wild exists not.
			m.Question[0].Name = "real.wild.secure.example."
			for _, rr := range m.Answer {
				rr.Header().Name = "real.wild.secure.example."
			}
			return m
		}, dns.ExtendedErrorCodeNSECMissing},
		{"NSEC3 wildcard answer for a name that exists", func(w *world) *dns.Msg {
			m := w.chase("x.wild.signed3.n3.", dns.TypeA)
			m.Question[0].Name = "real.wild.signed3.n3."
			for _, rr := range m.Answer {
				rr.Header().Name = "real.wild.signed3.n3."
			}
			return m
		}, dns.ExtendedErrorCodeNSECMissing},
		{"NXDOMAIN without wildcard proof", func(w *world) *dns.Msg {
			m := w.chase("nope.secure.example.", dns.TypeA)
			var ns []dns.RR
			for _, rr := range m.Ns {
				n, ok := rr.(*dns.NSEC)
				if ok && nsecCovers(n, "secure.example.", "*.secure.example.") {
					continue
				}
				if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == dns.TypeNSEC && s.Hdr.Name == "secure.example." {
					continue
				}
				ns = append(ns, rr)
			}
			if len(ns) != len(m.Ns)-2 {
				t.Fatalf("no separate wildcard NSEC in\n%v", m)
			}
			m.Ns = ns
			return m
		}, dns.ExtendedErrorCodeNSECMissing},
		{"NODATA for a name that does not exist", func(w *world) *dns.Msg {
			m := w.chase("nope.secure.example.", dns.TypeA)
			m.Rcode = dns.RcodeSuccess
			return m
		}, dns.ExtendedErrorCodeNSECMissing},
		{"NXDOMAIN from the parent's side of a cut", func(w *world) *dns.Msg {
			// The parent's NSEC at the delegation covers every name below
			// it in canonical order, but speaks only for the parent.
			m := new(dns.Msg)
			m.SetQuestion("www.secure.example.", dns.TypeA)
			m.Rcode = dns.RcodeNameError
			ex := w.zones["example."]
			m.Ns = ex.withSigs(nil, setKey{"example.", dns.TypeSOA})
			m.Ns = ex.withSigs(m.Ns, setKey{"secure.example.", dns.TypeNSEC})
			return m
		}, dns.ExtendedErrorCodeNSECMissing},
		{"RRSIG labels above the owner's", func(w *world) *dns.Msg {
			m := www(w)
			for _, rr := range m.Answer {
				if s, ok := rr.(*dns.RRSIG); ok {
					s.Labels = 4
				}
			}
			return m
		}, dns.ExtendedErrorCodeDNSBogus},
		{"NSEC3 wildcard without proof", func(w *world) *dns.Msg {
			m := w.chase("x.wild.signed3.n3.", dns.TypeA)
			m.Ns = nil
			return m
		}, dns.ExtendedErrorCodeNSECMissing},
		{"unsigned answer claimed insecure", func(w *world) *dns.Msg {
			// An unsigned A for a name in a secure zone: the chain to the
			// name finds no insecure delegation.
			m := w.chase("host.insecure.example.", dns.TypeA)
			m.Question[0].Name = "host.secure.example."
			m.Answer[0].Header().Name = "host.secure.example."
			return m
		}, dns.ExtendedErrorCodeRRSIGsMissing},
		{"tampered NSEC", func(w *world) *dns.Msg {
			m := w.chase("nope.secure.example.", dns.TypeA)
			for _, rr := range m.Ns {
				if n, ok := rr.(*dns.NSEC); ok {
					n.NextDomain = "zzz.secure.example."
				}
			}
			return m
		}, dns.ExtendedErrorCodeDNSBogus},
	}
	// why is what a case's reason must say, where the EDE alone does not
	// tell the cases apart.
	why := map[string]string{
		"RRSIG labels above the owner's": "labels 4 above the owner's 3",
		"tampered data":                  "does not verify",
		"tampered NSEC":                  "NSEC RRSIG",
		"DS digest mismatch":             "matches its DS",
		"wrong key":                      "names key",
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := f.world()
			m := tc.msg(w)
			r := check1(t, f.validator(t), w, m, Bogus, tc.ede)
			if r.Why == "" {
				t.Fatal("bogus result without a reason")
			}
			if want := why[tc.name]; !strings.Contains(r.Why, want) {
				t.Fatalf("reason %q, want it to say %q", r.Why, want)
			}
		})
	}
}
