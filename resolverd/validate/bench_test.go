package validate

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkValidate measures one validation with the chain's zone states
// cached (the steady state) and without the cache (every DS and DNSKEY
// fetched and verified again), for a positive answer (ED25519 under RSA
// under ECDSA) and an NSEC3 NXDOMAIN.
func BenchmarkValidate(b *testing.B) {
	f := buildFixture(b)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"www.secure.example.", dns.TypeA},
		{"nope.signed3.n3.", dns.TypeA},
	} {
		for _, mode := range []struct {
			name string
			size int
		}{{"cached", 0}, {"uncached", -1}} {
			b.Run(q.name+"/"+mode.name, func(b *testing.B) {
				v := New(Config{Anchors: f.anchors(b), Now: func() time.Time { return testNow }, CacheSize: mode.size})
				w := f.world()
				m := w.chase(q.name, q.qtype)
				ctx := context.Background()
				if r := v.Validate(ctx, m.Question[0], m, w); r.Security != Secure {
					b.Fatalf("%v %s", r.Security, r.Why)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					v.Validate(ctx, m.Question[0], m, w)
				}
			})
		}
	}
}
