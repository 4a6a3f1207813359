package validate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestRootAnchors(t *testing.T) {
	a := RootAnchors()
	z := a.closest("www.example.com.")
	if z == nil || z.zone != "." {
		t.Fatalf("closest anchor of www.example.com. = %v, want the root", z)
	}
	tags := map[uint16]bool{}
	for _, ds := range z.ds {
		if ds.Algorithm != dns.RSASHA256 || ds.DigestType != dns.SHA256 {
			t.Errorf("root DS %d: algorithm %d digest %d, want 8 and 2", ds.KeyTag, ds.Algorithm, ds.DigestType)
		}
		tags[ds.KeyTag] = true
	}
	if len(tags) != 2 || !tags[20326] || !tags[38696] {
		t.Fatalf("root anchors have key tags %v, want 20326 and 38696", tags)
	}
}

// rootKSK2017 is the root's KSK-2017 DNSKEY as IANA publishes it: its DS
// must be the built-in anchor's.
const rootKSK2017 = `. 172800 IN DNSKEY 257 3 8 AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU=`

func TestRootAnchorMatchesKSK(t *testing.T) {
	k, err := dns.NewRR(rootKSK2017)
	if err != nil {
		t.Fatal(err)
	}
	want := k.(*dns.DNSKEY).ToDS(dns.SHA256)
	for _, ds := range RootAnchors().closest(".").ds {
		if ds.KeyTag == want.KeyTag {
			if !strings.EqualFold(ds.Digest, want.Digest) {
				t.Fatalf("built-in DS %d digest %s, the KSK's is %s", ds.KeyTag, ds.Digest, want.Digest)
			}
			return
		}
	}
	t.Fatalf("no built-in DS with key tag %d", want.KeyTag)
}

func TestParseAnchors(t *testing.T) {
	good := []string{
		"example. IN DS 12345 13 2 " + strings.Repeat("ab", 32),
		"$ORIGIN example.\n@ 3600 IN DS 12345 8 4 " + strings.Repeat("AB", 48) + " ; a comment\n",
		rootKSK2017,
		"; two zones\n. DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\nexample. DS 1 15 2 " + strings.Repeat("01", 32),
	}
	for _, text := range good {
		if _, err := ParseAnchors(strings.NewReader(text), "good"); err != nil {
			t.Errorf("ParseAnchors(%q): %v", text, err)
		}
	}
	bad := []struct{ text, want string }{
		{"", "no DS or DNSKEY record"},
		{"; only a comment\n", "no DS or DNSKEY record"},
		{"example. IN A 192.0.2.1", "record 1 (example. A): only DS and DNSKEY"},
		{"example. IN DS 1 16 2 " + strings.Repeat("ab", 32), "algorithm 16"},
		{"example. IN DS 1 13 3 " + strings.Repeat("ab", 32), "digest type 3"},
		{"example. IN DS 1 13 2 abcd", "digest of 4 hex digits"},
		{"example. IN DS 1 13 2 " + strings.Repeat("ab", 32) + "\nexample. DNSKEY 256 4 13 AAAA", "protocol 4"},
		{"example. DNSKEY 0 3 13 AAAA", "record 1 (example. DNSKEY): DNSKEY 781 lacks the zone-key flag"},
		{"example. DNSKEY 257 3 13 AAAA", "does not decode"},
		{"example. CH DS 1 13 2 " + strings.Repeat("ab", 32), "class CH"},
		{"example. IN DS 1 13 2 zz", "bad"},
		{"$INCLUDE /etc/passwd\n", "include"},
	}
	for _, tc := range bad {
		_, err := ParseAnchors(strings.NewReader(tc.text), "bad.anchor")
		if err == nil {
			t.Errorf("ParseAnchors(%q) succeeded, want an error", tc.text)
			continue
		}
		if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) || !strings.Contains(err.Error(), "bad.anchor") {
			t.Errorf("ParseAnchors(%q) = %v, want an error naming bad.anchor and %q", tc.text, err, tc.want)
		}
	}
	if _, err := LoadAnchors(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "none") {
		t.Errorf("LoadAnchors of a missing file = %v", err)
	}
}

func FuzzParseAnchors(f *testing.F) {
	f.Add(rootAnchors)
	f.Add(rootKSK2017)
	f.Add("$ORIGIN example.\n@ DS 1 13 2 " + strings.Repeat("ab", 32))
	f.Add("example. IN A 192.0.2.1")
	f.Add("example. DNSKEY 257 3 13 (\n AAAA )")
	f.Add("$TTL 60\nexample. DS 1 13 1 " + strings.Repeat("ab", 20))
	f.Fuzz(func(t *testing.T, text string) {
		a, err := ParseAnchors(strings.NewReader(text), "fuzz")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz") && !strings.Contains(err.Error(), "validate: trust anchors") {
				t.Fatalf("error without its source: %v", err)
			}
			return
		}
		if len(a.Zones()) == 0 {
			t.Fatal("anchors parsed without a zone")
		}
		for _, z := range a.Zones() {
			if a.closest(z) == nil {
				t.Fatalf("zone %s not found after parsing", z)
			}
		}
	})
}

// TestAnchorFile loads the fixture's root as a DNSKEY anchor from a file
// and as a DS anchor, and checks both validate the same answer.
func TestAnchorFile(t *testing.T) {
	f := buildFixture(t)
	path := filepath.Join(t.TempDir(), "root.key")
	if err := os.WriteFile(path, []byte("; the fixture's root KSK\n"+f.root.ksk.pub.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := LoadAnchors(path)
	if err != nil {
		t.Fatal(err)
	}
	w := f.world()
	v := New(Config{Anchors: a, Now: func() time.Time { return testNow }})
	check1(t, v, w, w.chase("www.secure.example.", dns.TypeA), Secure, 0)

	// A DNSKEY anchor that is not the root's key: the root DNSKEY RRset
	// matches no anchor.
	wrong := newKey(t, ".", dns.ECDSAP256SHA256, true)
	a2, err := ParseAnchors(strings.NewReader(wrong.pub.String()), "wrong")
	if err != nil {
		t.Fatal(err)
	}
	v2 := New(Config{Anchors: a2, Now: func() time.Time { return testNow }})
	check1(t, v2, w, w.chase("www.secure.example.", dns.TypeA), Bogus, dns.ExtendedErrorCodeDNSKEYMissing)
}

// TestNoAnchor: names no anchor covers are indeterminate, not bogus.
func TestNoAnchor(t *testing.T) {
	f := buildFixture(t)
	a, err := ParseAnchors(strings.NewReader(f.secure.ds().String()), "secure only")
	if err != nil {
		t.Fatal(err)
	}
	v := New(Config{Anchors: a, Now: func() time.Time { return testNow }})
	w := f.world()
	check1(t, v, w, w.chase("www.signed3.n3.", dns.TypeA), Indeterminate, 0)
	// The anchored zone validates from its own anchor, down from no root.
	check1(t, v, w, w.chase("www.secure.example.", dns.TypeA), Secure, 0)
	if r := v.Validate(context.Background(), dns.Question{Name: "x.", Qtype: dns.TypeA, Qclass: dns.ClassINET}, &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeServerFailure}}, w); r.Security != Indeterminate {
		t.Fatalf("SERVFAIL validated as %v", r.Security)
	}
	m := w.chase("www.secure.example.", dns.TypeA)
	if r := v.Validate(context.Background(), dns.Question{Name: "www.secure.example.", Qtype: dns.TypeRRSIG, Qclass: dns.ClassINET}, m, w); r.Security != Indeterminate {
		t.Fatalf("an RRSIG query validated as %v", r.Security)
	}
}
