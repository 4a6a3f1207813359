package lookup

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// TestSetRulesAppliesToTheNextAnswer: a reload's TTL clamp and stale
// window store the next answer from the resolver; what is cached keeps
// what it was stored with.
func TestSetRulesAppliesToTheNextAnswer(t *testing.T) {
	z := &zoneResolver{records: map[string]string{
		"a.test.": "a.test. 3000 IN A 192.0.2.1",
		"b.test.": "b.test. 3000 IN A 192.0.2.2",
	}}
	h, _, _ := setup(t, z, 0) // MaxTTL 1h, no stale window
	ctx := t.Context()
	a, err := h.Lookup(ctx, newQuery("a.test.", dns.TypeA))
	if err != nil || a.Entry.TTL != 3000 || !a.Entry.StaleUntil.Equal(a.Entry.Expires()) {
		t.Fatalf("before SetRules: %+v %v", a, err)
	}
	h.SetRules(dnsmsg.Policy{MaxTTL: time.Minute}, time.Hour)
	b, err := h.Lookup(ctx, newQuery("b.test.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if b.Entry.TTL != 60 || !b.Entry.StaleUntil.Equal(b.Entry.Expires().Add(time.Hour)) {
		t.Errorf("after SetRules: TTL %d, stale until %v (expires %v); want 60 and an hour past", b.Entry.TTL, b.Entry.StaleUntil, b.Entry.Expires())
	}
	if a, err = h.Lookup(ctx, newQuery("a.test.", dns.TypeA)); err != nil || a.Source != SourceL1 || a.Entry.TTL != 3000 {
		t.Errorf("a cached entry changed by SetRules: %+v %v", a, err)
	}
}
