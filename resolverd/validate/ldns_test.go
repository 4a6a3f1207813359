package validate

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// ldnsZone is the zone ldns-signzone signs for TestLdnsSignedZone.
const ldnsZone = `$ORIGIN example.net.
$TTL 3600
@ SOA ns hostmaster 1 3600 600 86400 300
@ NS ns
ns A 192.0.2.53
www A 192.0.2.80
www AAAA 2001:db8::80
*.wild TXT "wildcard"
a.b A 192.0.2.81
alias CNAME www
`

// ldnsTool finds an ldnsutils program; without it the test is skipped, or
// fails when CI is set.
func ldnsTool(t *testing.T, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (apt-get install ldnsutils)", name)
		}
		t.Skipf("%s not found (apt-get install ldnsutils)", name)
	}
	return bin
}

// ldnsSign signs ldnsZone with ldns-signzone (extra are its options, -n
// for NSEC3) with a KSK and a ZSK ldns-keygen made, and returns the signed
// records and the KSK's DS file.
func ldnsSign(t *testing.T, extra ...string) ([]dns.RR, string) {
	t.Helper()
	keygen, signzone := ldnsTool(t, "ldns-keygen"), ldnsTool(t, "ldns-signzone")
	dir := t.TempDir()
	run := func(bin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v\n%s", bin, args, err, errb.String())
		}
		return strings.TrimSpace(out.String())
	}
	ksk := run(keygen, "-a", "ECDSAP256SHA256", "-k", "example.net")
	zsk := run(keygen, "-a", "ECDSAP256SHA256", "example.net")
	if err := os.WriteFile(filepath.Join(dir, "example.net.zone"), []byte(ldnsZone), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-i", strconv.FormatInt(testNow.Add(-time.Hour).Unix(), 10), "-e", strconv.FormatInt(testNow.Add(7*24*time.Hour).Unix(), 10), "-o", "example.net."}, extra...)
	args = append(args, "example.net.zone", ksk, zsk)
	run(signzone, args...)
	f, err := os.Open(filepath.Join(dir, "example.net.zone.signed"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zp := dns.NewZoneParser(f, "example.net.", "example.net.zone.signed")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("reading ldns-signzone's output: %v", err)
	}
	return rrs, filepath.Join(dir, ksk+".ds")
}

// TestLdnsSignedZone validates answers from a zone ldns-signzone signed,
// with NSEC and with NSEC3, trusting the DS file ldns-keygen wrote, so
// that the validator agrees with a real signer.
func TestLdnsSignedZone(t *testing.T) {
	for _, mode := range []struct {
		name  string
		extra []string
		chain uint16
	}{
		{"NSEC", nil, dns.TypeNSEC},
		{"NSEC3", []string{"-n", "-t", "0", "-s", "C0FFEE"}, dns.TypeNSEC3},
	} {
		t.Run(mode.name, func(t *testing.T) {
			rrs, dsFile := ldnsSign(t, mode.extra...)
			seen := false
			for _, rr := range rrs {
				seen = seen || rr.Header().Rrtype == mode.chain
			}
			if !seen {
				t.Fatalf("ldns-signzone made no %s records", dns.TypeToString[mode.chain])
			}
			anchors, err := LoadAnchors(dsFile)
			if err != nil {
				t.Fatal(err)
			}
			v := New(Config{Anchors: anchors, Now: func() time.Time { return testNow }})
			w := &world{zones: map[string]*auth{}}
			w.add("example.net.", rrs)
			for _, q := range []struct {
				name  string
				qtype uint16
				rcode int
			}{
				{"www.example.net.", dns.TypeA, dns.RcodeSuccess},
				{"www.example.net.", dns.TypeAAAA, dns.RcodeSuccess},
				{"www.example.net.", dns.TypeMX, dns.RcodeSuccess},
				{"nope.example.net.", dns.TypeA, dns.RcodeNameError},
				{"b.example.net.", dns.TypeA, dns.RcodeSuccess},
				{"x.wild.example.net.", dns.TypeTXT, dns.RcodeSuccess},
				{"x.wild.example.net.", dns.TypeA, dns.RcodeSuccess},
				{"alias.example.net.", dns.TypeA, dns.RcodeSuccess},
				{"example.net.", dns.TypeDNSKEY, dns.RcodeSuccess},
			} {
				m := w.chase(q.name, q.qtype)
				if m.Rcode != q.rcode {
					t.Fatalf("%s/%s answered %s", q.name, dns.TypeToString[q.qtype], dns.RcodeToString[m.Rcode])
				}
				check1(t, v, w, m, Secure, 0)
			}
			m := w.chase("www.example.net.", dns.TypeA)
			m.Answer[0].(*dns.A).A[3]++
			check1(t, v, w, m, Bogus, dns.ExtendedErrorCodeDNSBogus)
			m = w.chase("nope.example.net.", dns.TypeA)
			m.Question[0].Name = "www.example.net."
			check1(t, v, w, m, Bogus, dns.ExtendedErrorCodeNSECMissing)
		})
	}
}
