package fakenet

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUnboundAnswersTheTable: Unbound, validating from the fake root with
// the test's hints and trust anchor, answers every question of the table
// as the table says: rcode, answer RRsets, AD, the EDE of bogus answers,
// and the unvalidated data with CD=1. Asked again, it answers from its
// cache: the root and the TLDs see no new query.
func TestUnboundAnswersTheTable(t *testing.T) {
	n := Start(t, Options{Unbound: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before, err := n.Queries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	askAll := func(cached bool) func(t *testing.T) {
		return func(t *testing.T) { askTable(ctx, t, n, cached) }
	}
	t.Run("cold", askAll(false))
	cold, err := n.Queries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent := cold.Sub(before)
	t.Logf("queries sent to the authoritative servers: %v (total %d)", sent, sent.Total())
	for _, name := range []string{"a.root-servers.fake.", "ns.nic.fake.", "ns.nic.world.", "ns1.lame.fake.", "ns2.lame.fake."} {
		if sent[name] == 0 {
			t.Errorf("%s received no query", name)
		}
	}
	// The TCP-only server sees each question twice: truncated over UDP,
	// answered over TCP.
	if sent["ns.tcp.fake."] < 2 {
		t.Errorf("the TCP-only server received %d queries, want at least 2", sent["ns.tcp.fake."])
	}
	// The server without EDNS sees the query with EDNS, then without.
	if sent["ns.edns.fake."] < 2 {
		t.Errorf("the server without EDNS received %d queries, want at least 2", sent["ns.edns.fake."])
	}
	t.Run("cached", askAll(true))
	warm, err := n.Queries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again := warm.Sub(cold)
	for _, name := range []string{"a.root-servers.fake.", "ns.nic.fake.", "ns.nic.world."} {
		if again[name] != 0 {
			t.Errorf("%s received %d queries for answers in the cache", name, again[name])
		}
	}
	if t.Failed() {
		t.Logf("unbound log:\n%s", n.Unbound.Log())
	}
}

// askTable asks Unbound every question of the table and checks its
// answers. Unbound 1.17 keeps no Extended DNS Error with a bogus answer in
// its cache and answers it again with the generic one (6, DNSSEC Bogus);
// cached tells that the answers come from the cache.
func askTable(ctx context.Context, t *testing.T, n *Net, cached bool) {
	for _, q := range Questions() {
		if cached && q.Security == Bogus {
			q.EDE = dns.ExtendedErrorCodeDNSBogus
		}
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
}
