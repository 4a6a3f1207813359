package zonegen

import (
	"bytes"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func testConfig(n int) Config {
	return Config{Names: n, CNAMEShare: 0.10, AAAAShare: 0.30, MXShare: 0.05, TXTShare: 0.05, Seed: 7}
}

func TestGenerateMix(t *testing.T) {
	const n = 20000
	z, err := Generate(testConfig(n))
	if err != nil {
		t.Fatal(err)
	}
	if len(z.Names) != n {
		t.Fatalf("%d names, want %d", len(z.Names), n)
	}
	cnames, aaaa := 0, 0
	ttls := map[uint32]int{}
	seen := map[string]bool{}
	for i, nm := range z.Names {
		if nm.Name != NameAt(DefaultSuffix, i) {
			t.Fatalf("name %d is %q, want %q", i, nm.Name, NameAt(DefaultSuffix, i))
		}
		if seen[nm.Name] {
			t.Fatalf("name %q twice", nm.Name)
		}
		seen[nm.Name] = true
		if !dns.IsSubDomain(DefaultSuffix, nm.Name) {
			t.Errorf("%q outside the suffix", nm.Name)
		}
		if nm.TTL < 30 || nm.TTL > 86400 {
			t.Errorf("%q: TTL %d outside 30 s to a day", nm.Name, nm.TTL)
		}
		ttls[nm.TTL]++
		if nm.CNAME != "" {
			cnames++
			target, ok := z.Lookup(nm.CNAME)
			if !ok || target.CNAME != "" {
				t.Errorf("%q: alias of %q, which is missing or itself an alias", nm.Name, nm.CNAME)
			}
			if nm.AAAA || nm.MX || nm.TXT {
				t.Errorf("%q: CNAME with other data", nm.Name)
			}
		}
		if nm.AAAA {
			aaaa++
		}
	}
	if share := float64(cnames) / n; share < 0.08 || share > 0.12 {
		t.Errorf("CNAME share %.3f, want about 0.10", share)
	}
	if share := float64(aaaa) / float64(n-cnames); share < 0.27 || share > 0.33 {
		t.Errorf("AAAA share %.3f, want about 0.30", share)
	}
	if len(ttls) < 8 || ttls[30] == 0 || ttls[86400] == 0 {
		t.Errorf("TTLs not spread from 30 s to a day: %v", ttls)
	}
	for _, nx := range z.NXNames(1000) {
		if _, ok := z.Lookup(nx); ok || seen[nx] {
			t.Errorf("NX name %q exists", nx)
		}
		if !dns.IsSubDomain(DefaultSuffix, nx) {
			t.Errorf("NX name %q outside the suffix", nx)
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a, _ := Generate(testConfig(500))
	b, _ := Generate(testConfig(500))
	var ta, tb bytes.Buffer
	a.WriteTo(&ta)
	b.WriteTo(&tb)
	if ta.String() != tb.String() {
		t.Error("same seed, different zones")
	}
	cfg := testConfig(500)
	cfg.Seed++
	c, _ := Generate(cfg)
	var tc bytes.Buffer
	c.WriteTo(&tc)
	if tc.String() == ta.String() {
		t.Error("different seeds, same zone")
	}
	// Names depend on the index only: a small zone holds a large one's first names.
	big, _ := Generate(testConfig(2000))
	for i, n := range c.Names {
		if big.Names[i].Name != n.Name {
			t.Fatalf("name %d differs between zone sizes", i)
		}
	}
}

func TestGenerateExtra(t *testing.T) {
	cfg := testConfig(100)
	cfg.Extra = []string{"WWW.Example.ORG", "www.example.org.", "nope-1.x." + DefaultSuffix, NameAt(DefaultSuffix, 3), ".", "bad..name"}
	z, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(z.Names) != 101 {
		t.Errorf("%d names, want 100 generated and www.example.org only", len(z.Names))
	}
	if n, ok := z.Lookup("www.example.org"); !ok || n.CNAME != "" || n.TTL == 0 {
		t.Errorf("extra name: %+v, %v", n, ok)
	}
	if _, ok := z.Lookup("nope-1.x." + DefaultSuffix); ok {
		t.Error("a name under the suffix was added from Extra")
	}
}

func TestGenerateRejects(t *testing.T) {
	for _, cfg := range []Config{{Names: 0}, {Names: 10, CNAMEShare: 1}, {Names: 10, AAAAShare: -0.1}, {Names: 10, TXTShare: 2}} {
		if _, err := Generate(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// TestZoneText parses the written zone back: every record is valid, and
// the counts of each type match the generated names.
func TestZoneText(t *testing.T) {
	cfg := testConfig(3000)
	cfg.Extra = []string{"example.com", "www.example.com"}
	z, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := z.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo: %d, %v (wrote %d)", n, err, buf.Len())
	}
	want := map[uint16]int{dns.TypeSOA: 1, dns.TypeNS: 1, dns.TypeA: 1}
	for _, nm := range z.Names {
		if nm.CNAME != "" {
			want[dns.TypeCNAME]++
			continue
		}
		want[dns.TypeA]++
		for typ, has := range map[uint16]bool{dns.TypeAAAA: nm.AAAA, dns.TypeMX: nm.MX, dns.TypeTXT: nm.TXT} {
			if has {
				want[typ]++
			}
		}
	}
	got := map[uint16]int{}
	zp := dns.NewZoneParser(strings.NewReader(buf.String()), ".", "root.zone")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		got[rr.Header().Rrtype]++
		if rr.Header().Rrtype == dns.TypeSOA {
			if soa := rr.(*dns.SOA); soa.Minttl != NegativeTTL || rr.Header().Name != "." {
				t.Errorf("SOA %v", rr)
			}
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	for typ, w := range want {
		if got[typ] != w {
			t.Errorf("%s records: %d, want %d", dns.TypeToString[typ], got[typ], w)
		}
	}
}
