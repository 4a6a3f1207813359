package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// staleTTL is the TTL of every record in a stale answer (RFC 8767 §4).
const staleTTL = 30

// shortTTL is the -max-ttl the resolver fault tests run dnsd with, so a
// cached entry goes stale within the test.
const shortTTL = 2 * time.Second

// stubWait is how long a stub resolver waits for an answer before it
// retries or gives up: an answer, even SERVFAIL, must come before it.
const stubWait = 2 * time.Second

// frozenWait bounds a SERVFAIL when resolverd is frozen: dnsd's 1.8 s
// budget runs out first.
const frozenWait = 3 * time.Second

// frozenStaleWait bounds a stale answer when resolverd is frozen: it too
// comes when the budget runs out, and must come before dig's 5 s timeout.
const frozenStaleWait = 4 * time.Second

// isStale says whether dig printed a stale answer: NOERROR, every record
// with TTL 30, and EDE 3.
func isStale(r digResult) bool {
	if r.Status != "NOERROR" || len(r.Answer) == 0 || !strings.HasPrefix(r.EDE, "3 (Stale Answer)") {
		return false
	}
	for _, rr := range r.Answer {
		if rr.Header().Ttl != staleTTL {
			return false
		}
	}
	return true
}

// isFresh says whether dig printed a fresh answer: NOERROR, no EDE, every
// TTL within -max-ttl.
func isFresh(r digResult) bool {
	if r.Status != "NOERROR" || len(r.Answer) == 0 || r.EDE != "" {
		return false
	}
	for _, rr := range r.Answer {
		if time.Duration(rr.Header().Ttl)*time.Second > shortTTL {
			return false
		}
	}
	return true
}

// cacheFresh caches name through the fleet, checking the answer is fresh.
func cacheFresh(t *testing.T, f *fleet, name string) {
	t.Helper()
	if r := dig(t, f.dns, name, "A"); !isFresh(r) {
		t.Fatalf("dig %s before the fault: %s EDE %q %v; want a fresh answer with TTL <= %v", name, r.Status, r.EDE, r.Answer, shortTTL)
	}
}

// waitExpired sleeps until an entry cached just now is past its TTL.
func waitExpired() { time.Sleep(shortTTL + 300*time.Millisecond) }

// checkStale digs name and fails the test unless the answer is stale and
// came within limit.
func checkStale(t *testing.T, f *fleet, name string, limit time.Duration) {
	t.Helper()
	r, took := timedDig(t, f.dns, name, "A")
	if !isStale(r) {
		t.Errorf("dig %s with resolverd down: %s EDE %q %v; want NOERROR, TTL %d, EDE 3", name, r.Status, r.EDE, r.Answer, staleTTL)
	}
	if took > limit {
		t.Errorf("stale answer for %s after %v, over %v", name, took, limit)
	}
	t.Logf("stale answer for %s in %v: EDE %s", name, took, r.EDE)
}

// TestResolverKilledServesStaleThenRecovers kills resolverd: a name cached
// before is answered stale (TTL 30, EDE 3), a name never seen gets SERVFAIL
// with an EDE saying why, before a stub gives up. A new resolverd on the
// same address is found by dnsd by itself.
func TestResolverKilledServesStaleThenRecovers(t *testing.T) {
	f := startFleetWith(t, "-max-ttl", shortTTL.String())
	const cached, unseen = "www.shardns.test", "unseen.spread.shardns.test"
	cacheFresh(t, f, cached)
	f.resolver.Kill()
	killed := time.Now()
	waitExpired()

	checkStale(t, f, cached, stubWait)
	r, took := timedDig(t, f.dns, unseen, "A")
	if r.Status != "SERVFAIL" || !(strings.HasPrefix(r.EDE, "22 ") || strings.HasPrefix(r.EDE, "23 ")) {
		t.Errorf("dig %s with resolverd down: %s EDE %q; want SERVFAIL with EDE 22 or 23", unseen, r.Status, r.EDE)
	}
	if took > stubWait {
		t.Errorf("SERVFAIL for %s after %v, over the %v a stub waits", unseen, took, stubWait)
	}
	t.Logf("SERVFAIL for %s in %v: EDE %s", unseen, took, r.EDE)
	if n := metric(t, f.metrics, `shardns_lookup_answers_total{source="stale"}`); n < 1 {
		t.Errorf("stale answers counted: %v", n)
	}
	fails := metric(t, f.metrics, `shardns_lookup_failures_total{reason="resolver"}`) + metric(t, f.metrics, `shardns_lookup_failures_total{reason="timeout"}`)
	if fails < 1 {
		t.Errorf("lookup failures counted: %v", fails)
	}

	fresh0 := metric(t, f.metrics, `shardns_lookup_answers_total{source="resolver"}`)
	f.restartResolver(t)
	restarted := time.Now()
	var last [2]digResult
	tookBack, ok := poll(25*time.Second, 250*time.Millisecond, func() bool {
		last[0], last[1] = dig(t, f.dns, cached, "A"), dig(t, f.dns, unseen, "A")
		return isFresh(last[0]) && isFresh(last[1])
	})
	if !ok {
		t.Fatalf("no fresh answers %v after resolverd came back (down %v in all): %s %s EDE %q %v; %s %s EDE %q", tookBack, time.Since(killed),
			cached, last[0].Status, last[0].EDE, last[0].Answer, unseen, last[1].Status, last[1].EDE)
	}
	if n := metric(t, f.metrics, `shardns_lookup_answers_total{source="resolver"}`); n <= fresh0 {
		t.Errorf("answers from the resolver: %v, %v before the restart; want more", n, fresh0)
	}
	t.Logf("fresh answers again %v after resolverd restarted (%v after it was killed)", time.Since(restarted), time.Since(killed))
}

// TestResolverFrozenTimesOutAtBudget freezes resolverd with SIGSTOP: its
// connection stays up but no answer comes. A new name gets SERVFAIL with
// EDE 23 when dnsd's budget runs out; a name with a stale copy gets it.
func TestResolverFrozenTimesOutAtBudget(t *testing.T) {
	f := startFleetWith(t, "-max-ttl", shortTTL.String())
	const cached, unseen = "mail.shardns.test", "frozen.spread.shardns.test"
	cacheFresh(t, f, cached)
	waitExpired()
	resume := freeze(t, f.resolver)

	r, took := timedDig(t, f.dns, unseen, "A")
	if r.Status != "SERVFAIL" || !strings.HasPrefix(r.EDE, "23 ") {
		t.Errorf("dig %s with resolverd frozen: %s EDE %q; want SERVFAIL with EDE 23", unseen, r.Status, r.EDE)
	}
	if took > frozenWait {
		t.Errorf("SERVFAIL for %s after %v: want it at dnsd's budget, well before %v", unseen, took, frozenWait)
	}
	t.Logf("SERVFAIL for %s in %v with resolverd frozen: EDE %s", unseen, took, r.EDE)
	// With no answer at all, the stale copy is served when the budget
	// runs out (RFC 8767's client response timer), not at once.
	checkStale(t, f, cached, frozenStaleWait)
	if n := metric(t, f.metrics, `shardns_lookup_failures_total{reason="timeout"}`); n < 1 {
		t.Errorf("lookup timeouts counted: %v", n)
	}

	resume()
	tookBack, ok := poll(10*time.Second, 100*time.Millisecond, func() bool {
		m, err := exchange(f.dns, "udp", unseen, dns.TypeA)
		return err == nil && m.Rcode == dns.RcodeSuccess && len(m.Answer) == 1
	})
	if !ok {
		t.Fatalf("%s not answered %v after resolverd resumed", unseen, tookBack)
	}
	t.Logf("answers again %v after resolverd resumed", tookBack)
}
