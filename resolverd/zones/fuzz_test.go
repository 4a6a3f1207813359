package zones

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"
)

// FuzzLoad loads arbitrary zone-file text; Load must return a zone or an
// error, never panic, and a loaded zone must answer without panicking.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		exampleZone,
		exampleZone + bigTXT(),
		innerZone,
		soaLine,
		"",
		"$ORIGIN .\n@ 60 IN SOA a. b. 1 2 3 4 5\n* 60 IN A 127.0.0.1\n",
		soaLine + "$INCLUDE fuzz.example.zone\n",
		soaLine + "$GENERATE 1-20 host$ 60 IN A 127.0.0.$\n",
		soaLine + "x 60 IN CNAME x\n*.x 60 IN CNAME *.x\n",
		soaLine + "sub 60 IN NS ns.sub\nns.sub 60 IN A 127.0.0.1\n*.sub 60 IN A 127.0.0.2\n",
		"@ 60 IN SOA ( a. b.\n 1 2 3 4 5\n",
		"\"unterminated\n",
		"$TTL\n",
	} {
		f.Add(s)
	}
	names := []string{"fuzz.example.", "www.fuzz.example.", "x.fuzz.example.", "a.b.sub.fuzz.example.", "host7.fuzz.example.", "zzz.x.fuzz.example."}
	f.Fuzz(func(t *testing.T, text string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "fuzz.example.zone"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := Load(dir)
		if err != nil {
			return
		}
		for _, origin := range a.Zones() {
			for _, name := range append(names, origin, "*."+origin) {
				for _, qt := range []uint16{dns.TypeA, dns.TypeANY, dns.TypeDS, dns.TypeCNAME} {
					q := new(dns.Msg)
					q.SetQuestion(dns.Fqdn(name), qt)
					if m, ok := a.Answer(q); ok {
						if _, err := m.Pack(); err != nil {
							t.Logf("answer does not pack: %v", err)
						}
					}
				}
			}
		}
	})
}
