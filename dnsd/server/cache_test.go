package server_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// The second query is a cache hit whose TTLs count down; past the TTL the
// resolver is asked again.
func TestCacheHitAgesTTL(t *testing.T) {
	clock := newFakeClock()
	s := newSetup(t, options{now: clock.Now})
	ttlOf := func(r *dns.Msg) uint32 {
		t.Helper()
		if len(r.Answer) != 1 {
			t.Fatalf("%d answers, want 1", len(r.Answer))
		}
		return r.Answer[0].Header().Ttl
	}
	const name = "ttl.example.com."
	first := exchange(t, "udp", s.udp, query(name, dns.TypeA, 1))
	if got := ttlOf(first); got != ttlA {
		t.Errorf("first answer TTL %d, want %d", got, ttlA)
	}
	clock.Advance(100 * time.Second)
	second := exchange(t, "udp", s.udp, query(name, dns.TypeA, 2))
	if c := s.auth.Count(name, dns.TypeA); c != 1 {
		t.Fatalf("upstream asked %d times, want 1 (second query a cache hit)", c)
	}
	if got := ttlOf(second); got != ttlA-100 {
		t.Errorf("cache hit 100s later has TTL %d, want %d", got, ttlA-100)
	}
	clock.Advance(500 * time.Millisecond)
	if got := ttlOf(exchange(t, "tcp", s.tcp, query(name, dns.TypeA, 3))); got != ttlA-101 {
		t.Errorf("cache hit 100.5s later has TTL %d, want %d (age rounded up)", got, ttlA-101)
	}
	clock.Advance(ttlA * time.Second)
	third := exchange(t, "udp", s.udp, query(name, dns.TypeA, 4))
	if c := s.auth.Count(name, dns.TypeA); c != 2 {
		t.Errorf("after the TTL the upstream was asked %d times in all, want 2", c)
	}
	if got := ttlOf(third); got != ttlA {
		t.Errorf("refreshed answer TTL %d, want %d", got, ttlA)
	}
}

// With L1 off and a real Redis as the only tier, the second query is
// answered from Redis under the key DESIGN.md fixes.
func TestCacheHitFromRedis(t *testing.T) {
	rs := redistest.Start(t)
	tier, err := cache.NewRing(cache.RedisConfig{Addrs: []string{rs.Addr}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tier.Close() })
	s := newSetup(t, options{noL1: true, redis: tier})

	const name = "ReDiS.Example.COM."
	first := exchange(t, "udp", s.udp, query(name, dns.TypeA, 1))
	key := "dns:{redis.example.com.}:A:IN"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waitStored(t, rs, key) // dnsd writes to Redis after it answers
	ttl, err := rs.Client().PTTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > ttlA*time.Second {
		t.Fatalf("redis PTTL %s = %v, %v; want an expiry within %ds", key, ttl, err, ttlA)
	}
	second := exchange(t, "tcp", s.tcp, query(name, dns.TypeA, 2))
	if c := s.auth.Count(name, dns.TypeA); c != 1 {
		t.Fatalf("upstream asked %d times, want 1 (second query a Redis hit)", c)
	}
	if second.Question[0].Name != name || firstA(second) != "192.0.2.1" {
		t.Errorf("redis hit: question %v answer %v", second.Question, second.Answer)
	}
	if a, b := first.Answer[0].Header().Ttl, second.Answer[0].Header().Ttl; b > a {
		t.Errorf("redis hit TTL %d above the first answer's %d", b, a)
	}
}

// Identical concurrent misses make one upstream query.
func TestConcurrentMissesCoalesce(t *testing.T) {
	s := newSetup(t, options{})
	const n = 50
	const name = "slow.example.com."
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			<-start
			c := &dns.Client{Net: "udp", Timeout: clientTimeout}
			q := query(name, dns.TypeA, uint16(i))
			r, _, err := c.Exchange(q, s.udp)
			switch {
			case err != nil:
				errs <- err.Error()
			case r.Rcode != dns.RcodeSuccess || firstA(r) == "":
				errs <- "rcode " + dns.RcodeToString[r.Rcode] + ", no answer"
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if c := s.auth.Count(name, dns.TypeA); c != 1 {
		t.Errorf("upstream asked %d times for %d identical concurrent misses, want 1", c, n)
	}
}

// The upstream is gone and nothing is cached: SERVFAIL with an EDE, in
// time for the client (before it would retry).
func TestResolverDown(t *testing.T) {
	s := newSetup(t, options{})
	s.auth.Stop()
	for _, network := range []string{"udp", "tcp"} {
		begin := time.Now()
		r := exchange(t, network, s.addr(network), ednsQuery("down.example.com.", dns.TypeA, 7, 1232, false))
		took := time.Since(begin)
		if r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("%s: rcode %s, want SERVFAIL", network, dns.RcodeToString[r.Rcode])
		}
		e := ede(r)
		if e == nil {
			t.Fatalf("%s: SERVFAIL without an Extended DNS Error", network)
		}
		if e.InfoCode != dns.ExtendedErrorCodeNoReachableAuthority {
			t.Errorf("%s: EDE %d (%q), want %d", network, e.InfoCode, e.ExtraText, dns.ExtendedErrorCodeNoReachableAuthority)
		}
		if took >= clientTimeout {
			t.Errorf("%s: SERVFAIL after %v, not before the client's %v", network, took, clientTimeout)
		}
		if len(r.Question) != 1 || r.Question[0].Name != "down.example.com." {
			t.Errorf("%s: question %v", network, r.Question)
		}
	}
	// Without EDNS there is no room for an EDE, but it is still SERVFAIL.
	r := exchange(t, "udp", s.udp, query("down.example.com.", dns.TypeA, 8))
	if r.Rcode != dns.RcodeServerFailure || r.IsEdns0() != nil {
		t.Errorf("no EDNS: rcode %s, OPT %v; want SERVFAIL without OPT", dns.RcodeToString[r.Rcode], r.IsEdns0())
	}
}

// An upstream that never answers: the server answers SERVFAIL at its
// budget (1.8s), well before the shared resolver call gives up (3.5s).
func TestResolverTimeout(t *testing.T) {
	s := newSetup(t, options{fwdTimeout: 10 * time.Second, resolveTimeout: 3500 * time.Millisecond})
	const limit = 3 * time.Second // generous: the budget is 1.8s, the next bound 3.5s
	c := &dns.Client{Net: "udp", Timeout: limit}
	begin := time.Now()
	r, _, err := c.Exchange(ednsQuery("hole.example.com.", dns.TypeA, 9, 1232, false), s.udp)
	if err != nil {
		t.Fatalf("no answer within %v: %v", limit, err)
	}
	t.Logf("SERVFAIL after %v", time.Since(begin))
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if e := ede(r); e == nil || e.InfoCode != dns.ExtendedErrorCodeNetworkError {
		t.Errorf("EDE %v, want code %d", e, dns.ExtendedErrorCodeNetworkError)
	}
}

// waitStored waits until rs holds key, for at most 5 s: the answer to a
// miss leaves before its write to Redis lands.
func waitStored(tb testing.TB, rs *redistest.Server, key string) {
	tb.Helper()
	c := rs.Client()
	for end := time.Now().Add(5 * time.Second); c.Exists(context.Background(), key).Val() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			tb.Fatalf("%s not in Redis 5 s after its answer", key)
		}
	}
}
