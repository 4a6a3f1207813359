package warm

import (
	"testing"
	"time"
)

// TestSetRulesStoresLaterTasksUnderTheNewClamp: a reload's TTL clamp
// reaches the workers' next store.
func TestSetRulesStoresLaterTasksUnderTheNewClamp(t *testing.T) {
	f := newFixture(t, nil)
	w, err := New(Config{Resolver: f.res, Store: f.store, Policy: f.policy, Stale: f.stale})
	if err != nil {
		t.Fatal(err)
	}
	const key = "dns:{www.warm.test.}:A:IN"
	if _, err := w.Handle(t.Context(), warmTask("www.warm.test", "A")); err != nil {
		t.Fatal(err)
	}
	before := f.entry(t, key).TTL
	policy := f.policy
	policy.MaxTTL = time.Duration(before-1) * time.Second
	w.SetRules(policy, f.stale)
	if _, err := w.Handle(t.Context(), warmTask("www.warm.test", "A")); err != nil {
		t.Fatal(err)
	}
	if got := f.entry(t, key).TTL; got != before-1 {
		t.Errorf("after SetRules with max TTL %ds: stored TTL %d", before-1, got)
	}
}
