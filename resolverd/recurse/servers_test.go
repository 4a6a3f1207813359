package recurse

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestServerRanking: servers are tried by smoothed RTT; one that timed
// out is passed over for a backoff that doubles, one lame for a zone comes
// last for that zone only, and each recovers when its time is up.
func TestServerRanking(t *testing.T) {
	s := newServers(time.Minute)
	fast, slow, mute, lame := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.4")
	now := time.Unix(1000, 0)
	s.answered(fast, 5*time.Millisecond)
	s.answered(slow, 80*time.Millisecond)
	s.answered(lame, time.Millisecond)
	s.timedOut(mute, 600*time.Millisecond, now)
	s.setLame("z.test.", lame, now)
	order := func(zone string, at time.Time) []netip.Addr {
		var out []netip.Addr
		for _, c := range s.rank(zone, []netip.Addr{mute, lame, slow, fast}, at) {
			out = append(out, c.addr)
		}
		return out
	}
	eq := func(a, b []netip.Addr) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	if got, want := order("z.test.", now), []netip.Addr{fast, slow, mute, lame}; !eq(got, want) {
		t.Errorf("for z.test: %v, want %v", got, want)
	}
	if got, want := order("other.test.", now), []netip.Addr{lame, fast, slow, mute}; !eq(got, want) {
		t.Errorf("for another zone: %v, want %v", got, want)
	}
	// After the backoff (1 s) the silent server is back, ranked by its
	// RTT, which took the whole timeout; a second timeout doubles it.
	later := now.Add(1500 * time.Millisecond)
	if got := order("other.test.", later); got[3] != mute || s.rank("x.", []netip.Addr{mute}, later)[0].rank != 0 {
		t.Errorf("after the backoff: %v", got)
	}
	s.timedOut(mute, 600*time.Millisecond, later)
	if c := s.rank("x.", []netip.Addr{mute}, later.Add(1500*time.Millisecond))[0]; c.rank != 1 {
		t.Errorf("the second backoff did not double: %+v", c)
	}
	if !s.isLame("z.test.", lame, now.Add(59*time.Second)) || s.isLame("z.test.", lame, now.Add(61*time.Second)) {
		t.Error("lameness does not last its TTL, or outlasts it")
	}
	// The attempt's timeout follows the RTT, within bounds.
	if c := s.rank("x.", []netip.Addr{fast}, now)[0]; c.limit != minAttempt {
		t.Errorf("fast server's timeout %v, want %v", c.limit, minAttempt)
	}
}

// shareMap is a ServerShare in memory: what another resolver published.
type shareMap struct {
	known     map[netip.Addr]ServerInfo
	published map[netip.Addr][]ServerInfo
}

func (s *shareMap) Server(a netip.Addr) (ServerInfo, bool) { i, ok := s.known[a]; return i, ok }
func (s *shareMap) Publish(a netip.Addr, i ServerInfo) {
	s.published[a] = append(s.published[a], i)
}

// TestServerShare: a server another resolver found lame for a zone, or
// slow, is ranked so here before this resolver asks it; what this one
// learns is published; its own measure wins over the shared one.
func TestServerShare(t *testing.T) {
	now := time.Now()
	fast, slow, lame := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	sh := &shareMap{known: map[netip.Addr]ServerInfo{
		slow: {SRTT: 300 * time.Millisecond},
		lame: {SRTT: time.Millisecond, Lame: []LameZone{{Zone: "z.test.", Until: now.Add(time.Minute)}}},
		fast: {SRTT: 10 * time.Millisecond, NoEDNS: true},
	}, published: map[netip.Addr][]ServerInfo{}}
	s := newServers(time.Minute)
	s.share = sh
	got := s.rank("z.test.", []netip.Addr{lame, slow, fast}, now)
	if got[0].addr != fast || got[1].addr != slow || got[2].addr != lame || got[2].rank != 2 || got[0].edns {
		t.Fatalf("ranked %+v", got)
	}
	if !s.isLame("z.test.", lame, now) || s.isLame("other.test.", lame, now) {
		t.Error("shared lameness not taken for its zone only")
	}
	s.answered(slow, time.Millisecond)
	if p := sh.published[slow]; len(p) != 1 || p[0].SRTT >= 300*time.Millisecond {
		t.Errorf("published %+v", p)
	}
	s.setLame("y.test.", fast, now)
	if p := sh.published[fast]; len(p) != 1 || len(p[0].Lame) != 1 || p[0].Lame[0].Zone != "y.test." || !p[0].NoEDNS {
		t.Errorf("published %+v", p)
	}
	// An unknown server stays unknown, and is asked again of the share.
	other := netip.MustParseAddr("192.0.2.4")
	s.rank("z.test.", []netip.Addr{other}, now)
	sh.known[other] = ServerInfo{SRTT: 400 * time.Millisecond}
	if c := s.rank("z.test.", []netip.Addr{other}, now); c[0].rtt != 400*time.Millisecond {
		t.Errorf("a server learnt later by the share: %+v", c)
	}
}

// TestSetDNSSECFlushesAnswers: turning DO on or off forgets the answers
// the MemCache holds (had without signatures, or with them), keeps the
// delegations, and setting the same value again forgets nothing.
func TestSetDNSSECFlushesAnswers(t *testing.T) {
	c := NewMemCache(0)
	h, err := ParseHints(strings.NewReader(". 3600 NS a.root.test.\na.root.test. 3600 A 127.0.0.1\n"), "hints")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Hints: h, Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion("a.test.", dns.TypeA)
	c.PutAnswer("a.test.", dns.TypeA, m, time.Minute)
	c.PutDelegation(&Delegation{Zone: "test."}, time.Minute)
	r.SetDNSSEC(false)
	if _, n := c.Len(); n != 1 {
		t.Fatalf("same value: %d answers left, want 1", n)
	}
	r.SetDNSSEC(true)
	if d, n := c.Len(); n != 0 || d != 1 {
		t.Errorf("DO turned on: %d delegations, %d answers; want 1, 0", d, n)
	}
}
