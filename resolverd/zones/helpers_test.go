package zones

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// exampleZone is the main test zone. Its SOA TTL (3600) is above its
// MINIMUM (300), so negative answers carry TTL 300.
const exampleZone = `$TTL 3600
@       IN SOA  ns1.example.com. hostmaster.example.com. (
                2024010101 7200 900 1209600 300 )
        IN NS   ns1.example.com.
        IN MX   10 Mail.example.com.
ns1     IN A    127.0.0.53
www     IN A    127.0.0.10
www     IN AAAA ::1
Mail    IN A    127.0.0.25
txt     IN TXT  "hello" "world"
c1      IN CNAME c2
c2      IN CNAME c3
c3      IN CNAME www
out     IN CNAME www.example.net.
loop1   IN CNAME loop2
loop2   IN CNAME loop1
a.b.c   IN A    127.0.0.11
*.wild  IN A    127.0.0.12
*.wild  IN TXT  "wild"
cwild   IN CNAME x.wild
sub     IN NS   ns.sub
sub     IN NS   ns.elsewhere.net.
ns.sub  IN A    127.0.0.54
ns.sub  IN AAAA ::1
toinner IN CNAME www.inner
inner   IN NS   ns1.example.com.
`

// innerZone is nested in exampleZone. Its SOA TTL (60) is below its
// MINIMUM (600), so negative answers carry TTL 60.
const innerZone = `$ORIGIN inner.example.com.
@   60 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 600
    IN NS ns1.example.com.
www IN A 127.0.0.20
`

// bigTXT returns TXT records at big totalling well over 1232 bytes.
func bigTXT() string {
	var b strings.Builder
	for i := range 8 {
		b.WriteString(`big IN TXT "` + strings.Repeat(string(rune('a'+i)), 250) + "\"\n")
	}
	return b.String()
}

// writeFiles writes name->content into a new temporary directory.
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadExample loads exampleZone (with the big TXT) and innerZone.
func loadExample(t testing.TB) *Authority {
	t.Helper()
	dir := writeFiles(t, map[string]string{
		"example.com.zone":     exampleZone + bigTXT(),
		"inner.example.com.db": innerZone,
	})
	a, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ask builds a query with ID 777 and RD set.
func ask(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.Id = 777
	return q
}

// mustAnswer asks a and fails unless the name is inside a loaded zone.
func mustAnswer(t *testing.T, a *Authority, name string, qtype uint16) *dns.Msg {
	t.Helper()
	q := ask(name, qtype)
	m, ok := a.Answer(q)
	if !ok {
		t.Fatalf("%s %s: not answered", name, dns.TypeToString[qtype])
	}
	if m.Id != 777 || !m.Response || !m.RecursionDesired || m.RecursionAvailable {
		t.Errorf("%s: header id=%d qr=%v rd=%v ra=%v, want id 777, QR, RD copied, RA clear", name, m.Id, m.Response, m.RecursionDesired, m.RecursionAvailable)
	}
	if len(m.Question) != 1 || m.Question[0] != q.Question[0] {
		t.Errorf("%s: question %v, want %v as asked", name, m.Question, q.Question)
	}
	return m
}

// rrStrings renders records with tabs collapsed, for comparisons.
func rrStrings(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = strings.Join(strings.Fields(rr.String()), " ")
	}
	return out
}
