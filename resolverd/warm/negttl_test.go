package warm

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestWarmCapsNegativeTTL: the workers store a negative answer no longer
// than -max-negative-ttl, as the query path does.
func TestWarmCapsNegativeTTL(t *testing.T) {
	f := newFixture(t, nil)
	policy := f.policy
	policy.MaxNegativeTTL = 30 * time.Second // below the zone's negative TTL (SOA MINIMUM 60)
	w, err := New(Config{Resolver: f.res, Store: f.store, Policy: policy, Stale: f.stale})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, qtype, key string }{
		{"nx.warm.test", "A", "dns:{nx.warm.test.}:A:IN"},     // NXDOMAIN
		{"www.warm.test", "MX", "dns:{www.warm.test.}:MX:IN"}, // NODATA
		{"www.warm.test", "A", "dns:{www.warm.test.}:A:IN"},   // positive: the cap does not apply
	} {
		if _, err := w.Handle(t.Context(), warmTask(c.name, c.qtype)); err != nil {
			t.Fatalf("%s: %v", c.key, err)
		}
		e := f.entry(t, c.key)
		m := new(dns.Msg)
		if err := m.Unpack(e.Msg); err != nil {
			t.Fatal(err)
		}
		want := uint32(30)
		if len(m.Answer) > 0 {
			want = uint32(policy.MaxTTL / time.Second)
		}
		if e.TTL != want {
			t.Errorf("%s: stored with TTL %d, want %d", c.key, e.TTL, want)
		}
		for _, rr := range append(m.Answer, m.Ns...) {
			if rr.Header().Ttl > want {
				t.Errorf("%s: record %v above the entry's TTL", c.key, rr)
			}
		}
	}
}
