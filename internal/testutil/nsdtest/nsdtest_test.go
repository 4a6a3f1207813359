package nsdtest

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestStartServesZones: nsd loads the written configuration and answers
// for every zone, over UDP and TCP.
func TestStartServesZones(t *testing.T) {
	s := Start(t, map[string]string{
		"a.test": "$ORIGIN a.test.\n$TTL 60\n@ SOA ns hostmaster 1 7200 900 1209600 60\n@ NS ns\nns A 127.0.0.1\nwww A 192.0.2.1\n",
		"b.test": "$ORIGIN b.test.\n$TTL 60\n@ SOA ns hostmaster 1 7200 900 1209600 60\n@ NS ns\nns A 127.0.0.1\nwww A 192.0.2.2\n",
	})
	for _, proto := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		for name, want := range map[string]string{"www.a.test.": "192.0.2.1", "www.b.test.": "192.0.2.2"} {
			q := new(dns.Msg)
			q.SetQuestion(name, dns.TypeA)
			r, _, err := c.Exchange(q, s.Addr)
			if err != nil {
				t.Fatalf("%s %s: %v", proto, name, err)
			}
			if len(r.Answer) != 1 || !r.Authoritative {
				t.Fatalf("%s %s: %v", proto, name, r)
			}
			if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != want {
				t.Errorf("%s %s: answer %v, want %s", proto, name, r.Answer[0], want)
			}
		}
	}
}
