package resolve_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/fakenet"
	"github.com/shardns/shardns/resolverd/resolve"
)

// questionTap counts the queries sent, by question.
type questionTap struct {
	mu sync.Mutex
	n  map[string]int
}

func (q *questionTap) Exchanged(_ string, _ netip.AddrPort, _, _ time.Time, query, _ []byte) {
	m := new(dns.Msg)
	if m.Unpack(query) != nil || len(m.Question) != 1 {
		return
	}
	q.mu.Lock()
	q.n[m.Question[0].Name+" "+dns.TypeToString[m.Question[0].Qtype]]++
	q.mu.Unlock()
}

func (q *questionTap) reset() map[string]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.n
	q.n = map[string]int{}
	return out
}

// TestWildcardQueriesPerName resolves fresh names under the fake
// Internet's wildcard zones (NSEC and NSEC3) with validation on, after
// one name of each has been resolved: each further fresh name costs one
// query to the authoritative servers, its own; what the first names
// taught (zone cuts, keys, the names above) is not asked again.
func TestWildcardQueriesPerName(t *testing.T) {
	n := fakenet.Start(t, fakenet.Options{})
	tap := &questionTap{n: map[string]int{}}
	r, err := resolve.Open(resolve.Config{Recurse: true, RootHints: n.RootHints, DNSSEC: true, TrustAnchor: n.TrustAnchor, Tap: tap})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ask := func(name string) {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		q.SetEdns0(1232, true)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m, _, err := r.Exchange(ctx, q)
		if err != nil || m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || len(m.Answer) == 0 {
			t.Fatalf("%s: %v %v", name, m, err)
		}
	}
	zones := []string{"wild.fake.", "wild.nsec3.fake."}
	for _, z := range zones {
		ask("warm." + z)
	}
	warm := tap.reset()
	t.Logf("warm-up: %v", warm)
	const fresh = 10
	for i := range fresh {
		for _, z := range zones {
			ask(fmt.Sprintf("h%d.%s", i, z))
		}
	}
	got := tap.reset()
	total := 0
	for _, c := range got {
		total += c
	}
	if want := fresh * len(zones); total != want {
		t.Errorf("%d fresh names sent %d queries, want %d: %v", want, total, want, got)
	}
}
