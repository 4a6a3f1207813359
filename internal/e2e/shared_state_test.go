package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/resolverclient"
	"github.com/shardns/shardns/internal/testutil/fakenet"
	"github.com/shardns/shardns/internal/testutil/redistest"
	"github.com/shardns/shardns/resolverd/recurse/redisstate"
)

// sharedQuestion is one name asked of a resolverd, with the RCODE due.
type sharedQuestion struct {
	name  string
	qtype uint16
	rcode int
}

// The questions the first resolverd asks, walking zones under both TLDs
// of the fake Internet, and the questions the second asks: other names
// of the same zones, none asked before.
var (
	firstAsks = []sharedQuestion{
		{"www.secure.fake.", dns.TypeA, dns.RcodeSuccess},
		{"www.insecure.fake.", dns.TypeA, dns.RcodeSuccess},
		{"www.nsec3.fake.", dns.TypeA, dns.RcodeSuccess},
		{"www.ed.fake.", dns.TypeA, dns.RcodeSuccess},
		{"www.hosting.world.", dns.TypeA, dns.RcodeSuccess},
	}
	secondAsks = []sharedQuestion{
		{"txt.secure.fake.", dns.TypeTXT, dns.RcodeSuccess},
		{"mail.secure.fake.", dns.TypeMX, dns.RcodeSuccess},
		{"nothing.insecure.fake.", dns.TypeA, dns.RcodeNameError},
		{"x.wild.nsec3.fake.", dns.TypeA, dns.RcodeSuccess},
		{"ns.ed.fake.", dns.TypeA, dns.RcodeSuccess},
		{"ns1.hosting.world.", dns.TypeA, dns.RcodeSuccess},
	}
)

// topServers are the fake Internet's root and TLD servers.
var topServers = []string{"a.root-servers.fake.", "ns.nic.fake.", "ns.nic.world."}

// TestSharedResolverState measures the cold start of a second resolverd:
// resolverd A (-recurse, -redis R) walks zones of the fake Internet from
// its root; resolverd B on the same R asks other names of the same zones
// and sends no query to the root or a TLD server, while resolverd C, as
// cold but on another Redis, does; resolverd D on R asks A's questions
// and sends none at all: the answers are shared too.
func TestSharedResolverState(t *testing.T) {
	n := fakenet.Start(t, fakenet.Options{})
	shared, other := redistest.Start(t), redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// run starts a resolverd on redisAddr, asks it qs and returns the
	// queries the servers received, and its reads of the shared state.
	run := func(name, redisAddr string, qs []sharedQuestion) (fakenet.Counts, string) {
		t.Helper()
		grpcAddr, metrics := port(t), port(t)
		p := start(t, "resolverd", nil, "-listen", grpcAddr, "-metrics", metrics, "-recurse", "-root-hints", n.RootHints, "-trust-anchor", n.TrustAnchor, "-redis", redisAddr, "-workers", "0")
		waitTCP(t, p, grpcAddr)
		c, err := resolverclient.Dial([]string{grpcAddr})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		before, err := n.Queries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			m := new(dns.Msg)
			m.SetQuestion(q.name, q.qtype)
			wire, _ := m.Pack()
			qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
			ans, err := c.Resolve(qctx, wire)
			qcancel()
			if err != nil {
				t.Fatalf("%s: %s %s: %v", name, q.name, dns.TypeToString[q.qtype], err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(ans); err != nil {
				t.Fatal(err)
			}
			if r.Rcode != q.rcode || (q.rcode == dns.RcodeSuccess && len(r.Answer) == 0) {
				t.Fatalf("%s: %s %s: %s with %d answers, want %s\n%s", name, q.name, dns.TypeToString[q.qtype],
					dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[q.rcode], p.Out.String())
			}
		}
		after, err := n.Queries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var reads []string
		for _, kind := range []string{"delegation", "answer"} {
			for _, result := range []string{"hit", "miss", "error", "rejected"} {
				v := metric(t, metrics, fmt.Sprintf(`shardns_recurse_shared_reads_total{kind="%s",result="%s"}`, kind, result))
				if v > 0 {
					reads = append(reads, fmt.Sprintf("%s %s=%v", kind, result, v))
				}
			}
		}
		return after.Sub(before), strings.Join(reads, ", ")
	}

	a, aReads := run("A", shared.Addr, firstAsks)
	// A's writes go out on their own: wait until Redis holds the
	// delegations it learnt.
	rc := shared.Client()
	defer rc.Close()
	for _, zone := range []string{".", "fake.", "world.", "secure.fake.", "insecure.fake.", "nsec3.fake.", "ed.fake.", "hosting.world."} {
		deadline := time.Now().Add(5 * time.Second)
		for rc.Exists(ctx, redisstate.DelegationKey(zone)).Val() != 1 {
			if time.Now().After(deadline) {
				keys, _ := rc.Keys(ctx, "*").Result()
				t.Fatalf("A's delegation of %s never reached Redis; keys: %v", zone, keys)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	b, bReads := run("B", shared.Addr, secondAsks)
	c, cReads := run("C", other.Addr, secondAsks)
	// D, as cold on the shared state, asks A's own questions: every
	// answer comes from the answers A shared.
	d, dReads := run("D", shared.Addr, firstAsks)

	t.Logf("queries to the authoritative servers, and reads of the shared state:\n  A (cold, %d names):                  %s\n      %s\n  B (cold, A's shared state, %d names): %s\n      %s\n  C (cold, empty shared state, %d names): %s\n      %s",
		len(firstAsks), describe(a), aReads, len(secondAsks), describe(b), bReads, len(secondAsks), describe(c), cReads)
	t.Logf("  D (cold, A's shared state, A's %d names): %s\n      %s", len(firstAsks), describe(d), dReads)
	if d.Total() != 0 {
		t.Errorf("D, asking A's questions on A's shared state, sent %d queries", d.Total())
	}
	for _, s := range topServers {
		if b[s] != 0 {
			t.Errorf("B, on A's shared state, sent %d queries to %s", b[s], s)
		}
	}
	top := func(c fakenet.Counts) uint64 {
		var sum uint64
		for _, s := range topServers {
			sum += c[s]
		}
		return sum
	}
	if top(c) == 0 {
		t.Errorf("C, without shared state, sent no query to the root or a TLD: the measure shows nothing")
	}
	if top(a) == 0 {
		t.Errorf("A sent no query to the root or a TLD")
	}
}

// describe lays out counts: the total, and each non-zero server's.
func describe(c fakenet.Counts) string {
	var parts []string
	for s, v := range c {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", s, v))
		}
	}
	sort.Strings(parts)
	return fmt.Sprintf("total %d: %s", c.Total(), strings.Join(parts, " "))
}

// TestSharedResolverStateAllInOne: all-in-one dnsds (-recurse, -redis)
// share what their iterators learn as resolverds do. dnsd A walks zones
// of the fake Internet; dnsd B, cold, on the same Redis, asks other names
// of the same zones over DNS and sends no query to the root or a TLD
// server.
func TestSharedResolverStateAllInOne(t *testing.T) {
	n := fakenet.Start(t, fakenet.Options{})
	shared := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(name string, qs []sharedQuestion) fakenet.Counts {
		t.Helper()
		addr := port(t)
		p := start(t, "dnsd", nil, "-listen", addr, "-http", "", "-recurse", "-root-hints", n.RootHints, "-trust-anchor", n.TrustAnchor, "-redis", shared.Addr)
		waitTCP(t, p, addr)
		before, err := n.Queries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			r, err := exchange(addr, "udp", q.name, q.qtype)
			if err != nil || r.Rcode != q.rcode || (q.rcode == dns.RcodeSuccess && len(r.Answer) == 0) {
				t.Fatalf("%s: %s %s: %v %v, want %s\n%s", name, q.name, dns.TypeToString[q.qtype], r, err, dns.RcodeToString[q.rcode], p.Out.String())
			}
		}
		after, err := n.Queries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return after.Sub(before)
	}
	a := run("A", firstAsks)
	rc := shared.Client()
	defer rc.Close()
	for _, zone := range []string{".", "fake.", "world.", "secure.fake.", "insecure.fake.", "nsec3.fake.", "ed.fake.", "hosting.world."} {
		for deadline := time.Now().Add(5 * time.Second); rc.Exists(ctx, redisstate.DelegationKey(zone)).Val() != 1; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("A's delegation of %s never reached Redis", zone)
			}
		}
	}
	b := run("B", secondAsks)
	t.Logf("queries to the authoritative servers:\n  A (cold, %d names): %s\n  B (cold, A's shared state, %d names): %s", len(firstAsks), describe(a), len(secondAsks), describe(b))
	if a[topServers[0]] == 0 {
		t.Errorf("A sent no query to the root: the measure shows nothing")
	}
	for _, s := range topServers {
		if b[s] != 0 {
			t.Errorf("B, on A's shared state, sent %d queries to %s", b[s], s)
		}
	}
}
