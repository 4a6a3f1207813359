package fakenet

import (
	"context"
	"testing"
	"time"
)

// TestUnboundAnswersTheTable: Unbound, validating from the fake root with
// the test's hints and trust anchor, answers every question of the table
// as the table says: rcode, answer RRsets, AD, the EDE of bogus answers,
// and the unvalidated data with CD=1.
func TestUnboundAnswersTheTable(t *testing.T) {
	n := Start(t, Options{Unbound: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, q := range Questions() {
		t.Run(q.Name, func(t *testing.T) {
			r, err := q.Ask(ctx, n.Unbound.Addr, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Check(r); err != nil {
				t.Errorf("%v\nanswer:\n%v", err, r)
			}
			if q.Security == Bogus {
				r, err := q.Ask(ctx, n.Unbound.Addr, true)
				if err != nil {
					t.Fatal(err)
				}
				if err := q.CheckCD(r); err != nil {
					t.Errorf("%v\nanswer:\n%v", err, r)
				}
			}
		})
	}
	if t.Failed() {
		t.Logf("unbound log:\n%s", n.Unbound.Log())
	}
}
