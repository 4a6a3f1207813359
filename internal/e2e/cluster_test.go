package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/nsdtest"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// Bounds of the cluster tests' query loops and waits.
const (
	clusterLoadMax   = 20000                 // queries one load run sends at most
	clusterLoadLimit = 30 * time.Second      // and for at most this long
	clusterLoadPause = 2 * time.Millisecond  // between two queries of the run
	clusterSlow      = 50 * time.Millisecond // an answer this slow is counted (not failed)
	clusterSettle    = 10 * time.Second      // for writes to reach a new master
)

// clusterFleet is nsd behind resolverd behind dnsd, whose cache is a Redis
// Cluster of three masters with a replica each.
type clusterFleet struct {
	cluster  *redistest.Cluster
	resolver *proc
	dnsd     *proc
	dns      string // dnsd's address
	metrics  string // dnsd's metrics address
}

// startClusterFleet starts the fleet with L1 off, so that every answer
// from the cache comes from the cluster.
func startClusterFleet(t *testing.T) *clusterFleet {
	t.Helper()
	f := &clusterFleet{cluster: redistest.StartCluster(t, 3, 1)}
	nsd := nsdtest.Start(t, map[string]string{zoneName: testZone()})
	grpc := port(t)
	f.resolver = start(t, "resolverd", nil, "-listen", grpc, "-upstream", nsd.Addr)
	waitTCP(t, f.resolver, grpc)
	f.dns, f.metrics = port(t), port(t)
	f.dnsd = start(t, "dnsd", nil,
		"-listen", f.dns,
		"-redis", strings.Join(f.cluster.Addrs(), ","),
		"-redis-cluster",
		"-resolver", grpc,
		"-metrics", f.metrics,
		"-l1", "0")
	waitDNS(t, f.dnsd, f.dns, zoneName)
	return f
}

// clusterKey is the cache key of name and type, as docs/architecture.md spells it.
func clusterKey(name, qtype string) string {
	return "dns:{" + strings.ToLower(dns.Fqdn(name)) + "}:" + qtype + ":IN"
}

// clusterHits is how many answers dnsd gave from Redis so far.
func (f *clusterFleet) clusterHits(t *testing.T) float64 {
	t.Helper()
	return metric(t, f.metrics, `shardns_lookup_answers_total{source="redis"}`)
}

// clusterOn returns, of names under the wildcard, those whose A key has
// its slot on m now.
func clusterOn(f *clusterFleet, m *redistest.Server, names []string) []string {
	var out []string
	for _, n := range names {
		if f.cluster.MasterOf(cacheKey(n)) == m {
			out = append(out, n)
		}
	}
	return out
}

// clusterHasKey polls until key is readable on node s (a master, or a
// replica asked with READONLY) or clusterSettle passes.
func clusterHasKey(t *testing.T, s *redistest.Server, key string) bool {
	t.Helper()
	ctx := context.Background()
	conn := s.Client().Conn()
	defer conn.Close()
	_ = conn.ReadOnly(ctx).Err() // a master accepts READONLY too
	_, ok := poll(clusterSettle, 20*time.Millisecond, func() bool {
		n, err := conn.Exists(ctx, key).Result()
		return err == nil && n == 1
	})
	return ok
}

// clusterLoadResult is what one load run saw.
type clusterLoadResult struct {
	queries int
	failed  []string // what went wrong, one line per failed query
	slow    int      // answers slower than clusterSlow
	slowest time.Duration
}

// clusterLoad queries dnsd from one goroutine, one query at a time, until
// stop is closed or its bounds are reached: in turn a name of warm (cached
// before the run) and a new name under the wildcard (a miss, then a write).
// Every query must get NOERROR with the wildcard's address within
// hangBound.
func clusterLoad(addr, prefix string, warm []string, stop <-chan struct{}) clusterLoadResult {
	var res clusterLoadResult
	deadline := time.Now().Add(clusterLoadLimit)
	for i := 0; i < clusterLoadMax && time.Now().Before(deadline); i++ {
		select {
		case <-stop:
			return res
		default:
		}
		name := warm[(i/2)%len(warm)]
		if i%2 == 1 {
			name = spread(prefix, i/2)
		}
		r, d, err := timedExchange(addr, name, dns.TypeA)
		res.queries++
		res.slowest = max(res.slowest, d)
		if d > clusterSlow {
			res.slow++
		}
		switch {
		case err != nil:
			res.failed = append(res.failed, fmt.Sprintf("%s: %v after %v", name, err, d))
		case r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !strings.HasSuffix(r.Answer[0].String(), "192.0.2.99"):
			res.failed = append(res.failed, fmt.Sprintf("%s: %s %v", name, dns.RcodeToString[r.Rcode], r.Answer))
		case d > hangBound:
			res.failed = append(res.failed, fmt.Sprintf("%s: answered after %v", name, d))
		}
		time.Sleep(clusterLoadPause)
	}
	return res
}

// clusterDuring runs clusterLoad over warm while change runs, and for
// after more once it returned, and fails the test for any query that was
// not answered right.
func (f *clusterFleet) clusterDuring(t *testing.T, prefix string, warm []string, after time.Duration, change func()) clusterLoadResult {
	t.Helper()
	stop := make(chan struct{})
	var res clusterLoadResult
	var wg sync.WaitGroup
	wg.Go(func() { res = clusterLoad(f.dns, prefix, warm, stop) })
	time.Sleep(200 * time.Millisecond)
	change()
	time.Sleep(after)
	close(stop)
	wg.Wait()
	alive(t, f.dnsd)
	for i, e := range res.failed {
		if i == 10 {
			t.Errorf("... %d more", len(res.failed)-i)
			break
		}
		t.Error(e)
	}
	if len(res.failed) > 0 {
		t.Errorf("%d of %d queries failed", len(res.failed), res.queries)
	}
	return res
}

// clusterMovedTo checks that after a failover from old to promoted the
// names cached on old are still cached on promoted (replicated), that dnsd
// answers them from the cache again, and that new answers are written to
// promoted.
func (f *clusterFleet) clusterMovedTo(t *testing.T, promoted *redistest.Server, cached []string, prefix string) {
	t.Helper()
	for _, n := range cached {
		if !clusterHasKey(t, promoted, cacheKey(n)) {
			t.Errorf("%s: the key cached before the failover is not on %s", n, promoted.Addr)
		}
	}
	hits0 := f.clusterHits(t)
	took, ok := poll(clusterSettle, 50*time.Millisecond, func() bool {
		before := f.clusterHits(t)
		for _, n := range cached {
			if r, err := exchange(f.dns, "udp", n, dns.TypeA); err != nil || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("%s: %v %v", n, r, err)
			}
		}
		return f.clusterHits(t)-before == float64(len(cached))
	})
	if !ok {
		t.Errorf("the %d names cached on the old master not all answered from the new one within %v (%v hits)", len(cached), took, f.clusterHits(t)-hits0)
	}
	var fresh []string
	for i := 0; len(fresh) < 3 && i < 300; i++ {
		if n := spread(prefix, i); f.cluster.MasterOf(cacheKey(n)) == promoted {
			fresh = append(fresh, n)
		}
	}
	if len(fresh) < 3 {
		t.Fatalf("no names found whose slot is on %s", promoted.Addr)
	}
	queryAll(t, f.dns, fresh)
	for _, n := range fresh {
		if !clusterHasKey(t, promoted, cacheKey(n)) {
			t.Errorf("%s answered after the failover but not written to the new master %s", n, promoted.Addr)
		}
	}
}

// TestClusterQueryPathAndFailover runs dnsd on a Redis Cluster: every kind
// of answer, cached on the master that owns its slot and answered from
// there the second time, names spread over every master; then a graceful
// failover and a master killed while dnsd is being queried: every query is
// answered, and the cache moves to the promoted replica by itself.
func TestClusterQueryPathAndFailover(t *testing.T) {
	f := startClusterFleet(t)
	var warm []string
	for i := range 90 {
		warm = append(warm, spread("c", i))
	}
	if !t.Run("QueryPath", func(t *testing.T) { f.clusterQueryPath(t, warm) }) {
		return
	}
	if !t.Run("GracefulFailover", func(t *testing.T) {
		old := f.cluster.Masters()[0]
		replica := f.cluster.WaitReplicaOf(old)
		cached := clusterOn(f, old, warm)
		errs0 := metric(t, f.metrics, `shardns_cache_errors_total{op="get"}`)
		var took time.Duration
		res := f.clusterDuring(t, "g", warm, 500*time.Millisecond, func() {
			t0 := time.Now()
			f.cluster.Failover(replica)
			took = time.Since(t0)
		})
		errs := metric(t, f.metrics, `shardns_cache_errors_total{op="get"}`) - errs0
		t.Logf("graceful failover of %s to %s, settled in %v: %d queries, %d failed, %d over %v (slowest %v), %v cache reads failed (counted as misses)",
			old.Addr, replica.Addr, took.Round(time.Millisecond), res.queries, len(res.failed), res.slow, clusterSlow, res.slowest.Round(time.Millisecond), errs)
		f.clusterMovedTo(t, replica, cached, "gn")
		if f.cluster.ReplicaOf(replica) != old {
			t.Errorf("%s is not the replica of %s after the failover", old.Addr, replica.Addr)
		}
	}) {
		return
	}
	t.Run("MasterKilled", func(t *testing.T) {
		var victim, replica *redistest.Server
		for _, m := range f.cluster.Masters() {
			if r := f.cluster.ReplicaOf(m); r != nil {
				victim, replica = m, r
			}
		}
		if victim == nil {
			t.Fatal("no master with a replica")
		}
		cached := clusterOn(f, victim, warm)
		errs0 := metric(t, f.metrics, `shardns_cache_errors_total{op="get"}`)
		var promoted time.Duration
		res := f.clusterDuring(t, "k", warm, time.Second, func() {
			t0 := time.Now()
			victim.Kill()
			f.cluster.WaitMaster(replica)
			promoted = time.Since(t0)
		})
		errs := metric(t, f.metrics, `shardns_cache_errors_total{op="get"}`) - errs0
		t.Logf("master %s killed, %s promoted and settled after %v: %d queries, %d failed, %d over %v (slowest %v), %v cache reads failed (counted as misses)",
			victim.Addr, replica.Addr, promoted.Round(time.Millisecond), res.queries, len(res.failed), res.slow, clusterSlow, res.slowest.Round(time.Millisecond), errs)
		if errs == 0 {
			t.Error("no cache read failed while a master was dead: the kill was never felt")
		}
		f.clusterMovedTo(t, replica, cached, "kn")
		if slices.Contains(f.cluster.Masters(), victim) {
			t.Errorf("killed %s still owns slots", victim.Addr)
		}
	})
}

// clusterQueryPath runs the query-path checks against the cluster: each
// kind of answer twice, the second from Redis with its TTL aged, stored on
// the master that owns the key's slot (and its replica), and the warm
// names cached over all three masters.
func (f *clusterFleet) clusterQueryPath(t *testing.T, warm []string) {
	ctx := context.Background()
	cases := []struct {
		name, qtype, status string
		want                []string
		ttl                 uint32 // the records' TTL in the zone
	}{
		{"www.shardns.test", "A", "NOERROR", []string{"192.0.2.10"}, 300},
		{"www.shardns.test", "AAAA", "NOERROR", []string{"2001:db8::10"}, 300},
		{"shardns.test", "MX", "NOERROR", []string{"10 mail.shardns.test."}, 300},
		{"txt.shardns.test", "TXT", "NOERROR", []string{`"v=spf1 -all"`}, 300},
		{"alias1.shardns.test", "A", "NOERROR", []string{"alias2.shardns.test.", "alias3.shardns.test.", "www.shardns.test.", "192.0.2.10"}, 300},
		{"nope.shardns.test", "A", "NXDOMAIN", nil, 60},
	}
	// firstTTL is the TTL a check compares: the answer's first record, or
	// the SOA of a negative answer.
	firstTTL := func(r digResult) uint32 {
		if len(r.Answer) > 0 {
			return r.Answer[0].Header().Ttl
		}
		return r.Authority[0].Header().Ttl
	}
	check := func(round int, r digResult, name, qtype, status string, want []string) {
		t.Helper()
		if r.Status != status || !slices.Equal(rdata(r.Answer), want) {
			t.Fatalf("round %d: dig %s %s: %s %q, want %s %q", round, name, qtype, r.Status, rdata(r.Answer), status, want)
		}
		if status == "NXDOMAIN" {
			if len(r.Authority) != 1 {
				t.Fatalf("round %d: NXDOMAIN authority %v: want the zone's SOA", round, r.Authority)
			}
			if soa, ok := r.Authority[0].(*dns.SOA); !ok || soa.Minttl != 60 || soa.Hdr.Ttl > 60 {
				t.Errorf("round %d: NXDOMAIN authority %v: want the zone's SOA with TTL at most 60", round, r.Authority)
			}
		}
	}
	first := make([]digResult, len(cases))
	for i, c := range cases {
		first[i] = dig(t, f.dns, c.name, c.qtype)
		check(1, first[i], c.name, c.qtype, c.status, c.want)
	}
	hits0 := f.clusterHits(t)
	time.Sleep(2100 * time.Millisecond)
	for i, c := range cases {
		r := dig(t, f.dns, c.name, c.qtype)
		check(2, r, c.name, c.qtype, c.status, c.want)
		if t1, t2 := firstTTL(first[i]), firstTTL(r); t1 > c.ttl || t2 >= t1 || t2+5 < t1 {
			t.Errorf("%s %s: TTL %d then %d, want the cached answer aged by about 2s", c.name, c.qtype, t1, t2)
		}
	}
	if hits := f.clusterHits(t) - hits0; hits != float64(len(cases)) {
		t.Errorf("%v answers from Redis in the second round, want %d", hits, len(cases))
	}
	for _, c := range cases {
		key := clusterKey(c.name, c.qtype)
		m := f.cluster.MasterOf(key)
		ttl, err := m.Client().PTTL(ctx, key).Result()
		if err != nil || ttl < 24*time.Hour || ttl > 24*time.Hour+time.Duration(c.ttl)*time.Second {
			t.Errorf("%s on %s, the master of slot %d: expiry %v (%v), want the TTL plus the 24h stale window", key, m.Addr, f.cluster.Slot(key), ttl, err)
		}
		if r := f.cluster.ReplicaOf(m); r == nil || !clusterHasKey(t, r, key) {
			t.Errorf("%s not replicated to the replica of %s", key, m.Addr)
		}
	}

	queryAll(t, f.dns, warm)
	total := 0
	for _, m := range f.cluster.Masters() {
		keys, err := m.Client().Keys(ctx, "dns:*").Result()
		if err != nil || len(keys) == 0 {
			t.Errorf("master %s holds %d cache keys (%v): want keys on every master", m.Addr, len(keys), err)
		}
		t.Logf("master %s holds %d cache keys", m.Addr, len(keys))
		total += len(keys)
	}
	if want := len(warm) + len(cases) + 1; total != want { // + the SOA that waitDNS asked
		t.Errorf("the masters hold %d cache keys, want %d", total, want)
	}
}
