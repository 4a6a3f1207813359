package cache

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

func TestKeyName(t *testing.T) {
	for _, c := range []struct {
		name          string
		qtype, qclass uint16
		do, cd        bool
	}{
		{"www.example.com.", dns.TypeA, dns.ClassINET, false, false},
		{"WWW.Example.COM.", dns.TypeAAAA, dns.ClassINET, true, true},
		{".", dns.TypeNS, dns.ClassINET, false, false},
		{`a\.b.example.`, dns.TypeTXT, dns.ClassCHAOS, false, true},
		{"a}:b.example.", 65280, 999, true, false},
		{"*.example.", dns.TypeMX, dns.ClassINET, false, false},
	} {
		k := dnsmsg.Key(c.name, c.qtype, c.qclass, c.do, c.cd)
		got, ok := KeyName(k)
		if want := dnsmsg.LowerName(c.name); !ok || got != want {
			t.Errorf("KeyName(%q) = %q, %v; want %q", k, got, ok, want)
		}
		if !strings.HasPrefix(k, tagKey(got)) {
			t.Errorf("%q does not start with tagKey %q", k, tagKey(got))
		}
	}
	for _, k := range []string{"", "dns:", "dns:{", "dns:{}:A:IN", "dns:{x}:A:IN", "q:{warm}:pending", "dns:{x.:A:IN", "DNS:{x.}:A:IN"} {
		if n, ok := KeyName(k); ok {
			t.Errorf("KeyName(%q) = %q, want refused", k, n)
		}
	}
}

func TestUnderName(t *testing.T) {
	for _, c := range []struct {
		name, suffix string
		want         bool
	}{
		{"example.com.", "example.com.", true},
		{"a.example.com.", "example.com.", true},
		{"a.b.example.com.", "example.com.", true},
		{"aexample.com.", "example.com.", false},
		{`a\.example.com.`, "example.com.", false},   // one label "a.example"
		{`a\\.example.com.`, "example.com.", true},   // label `a\`
		{`a\\\.example.com.`, "example.com.", false}, // label `a\.example`
		{"example.com.evil.", "example.com.", false},
		{"com.", "example.com.", false},
		{"anything.", ".", true},
		{".", ".", true},
		{"*.example.com.", "example.com.", true},
	} {
		if got := UnderName(c.name, c.suffix); got != c.want {
			t.Errorf("UnderName(%q, %q) = %v, want %v", c.name, c.suffix, got, c.want)
		}
	}
}

// canonical is name as keys hold it: packed, read back and lowercased.
func canonical(name string) (string, bool) {
	if _, ok := dns.IsDomainName(name); !ok || !dns.IsFqdn(dns.Fqdn(name)) {
		return "", false
	}
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return "", false
	}
	s, _, err := dns.UnpackDomainName(buf[:n], 0)
	if err != nil {
		return "", false
	}
	return dnsmsg.LowerName(s), true
}

// FuzzUnderName checks UnderName against miekg/dns's IsSubDomain on names
// in key form.
func FuzzUnderName(f *testing.F) {
	for _, s := range [][2]string{
		{"a.example.com", "example.com"}, {`a\.example.com`, "example.com"}, {`a\\.example.com`, "example.com"},
		{"xexample.com", "example.com"}, {"example.com", "."}, {`\065.b`, "b"}, {`a\032b.c`, `b.c`},
		{"example.com", "a.example.com"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, suffix string) {
		n, ok1 := canonical(name)
		s, ok2 := canonical(suffix)
		if !ok1 || !ok2 {
			return
		}
		if got, want := UnderName(n, s), dns.IsSubDomain(s, n); got != want {
			t.Fatalf("UnderName(%q, %q) = %v, IsSubDomain says %v", n, s, got, want)
		}
	})
}

func TestEscapeGlob(t *testing.T) {
	for in, want := range map[string]string{
		"www.example.": "www.example.",
		"*.example.":   `\*.example.`,
		`a?b[c]d\e.`:   `a\?b\[c\]d\\e.`,
		"":             "",
	} {
		if got := escapeGlob(in); got != want {
			t.Errorf("escapeGlob(%q) = %q, want %q", in, got, want)
		}
	}
}
