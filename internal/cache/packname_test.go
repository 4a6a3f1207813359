package cache

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestPackNameMatchesMiekg compares packName, which keyQuestion uses to
// rebuild a question from its key, with dns.PackDomainName: the same
// bytes for every name PackDomainName packs, and a refusal for every name
// it refuses, so a key decodes the entries it decoded before and no other.
func TestPackNameMatchesMiekg(t *testing.T) {
	names := []string{
		".", "a.", "example.com.", "www.example.com.", "a..b.", "..", ".a.", "a",
		"xn--bcher-kva.example.", "_sip._udp.example.", "a b.example.", "*.example.",
		`a\.b.example.`, `a\065.example.`, `\\.`, "a.b.c.d.e.f.g.",
		strings.Repeat("a", 63) + ".", strings.Repeat("a", 64) + ".",
		strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61) + ".",
		strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 62) + ".",
		strings.Repeat("a.", 127), strings.Repeat("a.", 128),
		"\x00.", "\xff\xfe.example.", "a.\x80.",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab.-_\\0129\x00\xff"
	for range 20000 {
		b := make([]byte, 1+rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		names = append(names, string(b), string(b)+".")
	}
	for _, name := range names {
		var got, want [256]byte
		n, ok := packName(name, got[:255])
		wn, err := dns.PackDomainName(name, want[:255], 0, nil, false)
		if ok != (err == nil) {
			t.Errorf("%q: packName ok %v, PackDomainName error %v", name, ok, err)
			continue
		}
		if ok && string(got[:n]) != string(want[:wn]) {
			t.Errorf("%q: packName %x, PackDomainName %x", name, got[:n], want[:wn])
		}
	}
}

// TestKeyTypeMatchesParseKeyType checks keyType's shortcuts against the
// table they shortcut.
func TestKeyTypeMatchesParseKeyType(t *testing.T) {
	for _, s := range []string{"A", "AAAA", "CNAME", "MX", "TXT", "NS", "PTR", "SOA", "SRV", "HTTPS", "CAA", "TYPE65280", "a", "", "TYPE0"} {
		got, gok := keyType(s)
		want, wok := dns.StringToType[s]
		if s == "TYPE65280" {
			want, wok = 65280, true
		}
		if got != want || gok != wok {
			t.Errorf("keyType(%q) = %d, %v; want %d, %v", s, got, gok, want, wok)
		}
	}
}
