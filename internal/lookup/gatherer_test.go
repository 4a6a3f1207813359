package lookup

import (
	"context"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// The chain's Gatherer reads the same counters the chain's registry does,
// and only the lookup ones.
func TestChainGatherer(t *testing.T) {
	z := &zoneResolver{records: map[string]string{"a.test.": "a.test. 100 IN A 192.0.2.1"}}
	c, _, reg := setup(t, z, 0)
	for range 3 {
		if _, err := c.Lookup(context.Background(), newQuery("a.test.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := c.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var answers float64
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if mf.GetName() == "shardns_lookup_answers_total" {
			for _, m := range mf.GetMetric() {
				answers += m.GetCounter().GetValue()
			}
		}
	}
	// No failure yet: a CounterVec with no series is not gathered.
	if want := []string{"shardns_lookup_answers_total", "shardns_lookup_duration_seconds"}; !slices.Equal(names, want) {
		t.Errorf("Gatherer has %v, want %v", names, want)
	}
	if got := counter(t, reg, "shardns_lookup_answers_total", "l1"); answers != 3 || got != 2 {
		t.Errorf("Gatherer counts %v answers, want 3 (the chain's registry: %v from l1, want 2)", answers, got)
	}
}
