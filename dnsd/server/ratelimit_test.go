package server_test

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/ratelimit"
	"github.com/shardns/shardns/dnsd/server"
)

// 50 UDP queries at once from one client, against 5 a second with a burst
// of 5, on a clock that does not move: 5 are answered, then the over-limit
// ones alternate between an empty TC=1 reply (slip 2), no larger than the
// query and with an OPT like every reply to EDNS, and silence. Over TCP
// the same client is never limited.
func TestRateLimit(t *testing.T) {
	clock := newFakeClock()
	lim := ratelimit.New(ratelimit.Config{Rate: 5, Burst: 5, Slip: 2, Now: clock.Now})
	s := newEdgeSetup(t, options{}, server.Config{Limiter: lim})

	c, err := net.Dial("udp", s.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n, burst = 50, 5
	queryLen := len(pack(t, ednsQuery("rl.example.com.", dns.TypeA, 0, 1232, false)))
	for i := range n {
		if _, err := c.Write(pack(t, ednsQuery("rl.example.com.", dns.TypeA, uint16(i), 1232, false))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(hangBound)
	for st := lim.Stats(); st.Allowed+st.Slipped+st.Dropped < n; st = lim.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v the limiter has seen %+v of %d queries", hangBound, st, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	st := lim.Stats()
	const overLimit = n - burst
	if st.Allowed != burst || st.Slipped != (overLimit+1)/2 || st.Dropped != overLimit/2 {
		t.Errorf("limiter: %+v; want %d allowed, %d slipped, %d dropped", st, burst, (overLimit+1)/2, overLimit/2)
	}

	var normal, slipped int
	seen := map[uint16]bool{}
	buf := make([]byte, 65535)
	for range st.Allowed + st.Slipped {
		_ = c.SetReadDeadline(time.Now().Add(hangBound))
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d normal and %d slipped replies: %v", normal, slipped, err)
		}
		r := unpack(t, buf[:k])
		if seen[r.Id] || r.Id >= n {
			t.Fatalf("reply with repeated or unknown ID %d", r.Id)
		}
		seen[r.Id] = true
		if r.IsEdns0() == nil {
			t.Errorf("ID %d (TC %v): no OPT in the reply to an EDNS query (RFC 6891 §6.1.1)", r.Id, r.Truncated)
		}
		if r.Truncated && k > queryLen {
			t.Errorf("ID %d: slipped reply of %d bytes to a query of %d", r.Id, k, queryLen)
		}
		switch {
		case r.Rcode != dns.RcodeSuccess || len(r.Question) != 1:
			t.Errorf("ID %d: rcode %s question %v", r.Id, dns.RcodeToString[r.Rcode], r.Question)
		case r.Truncated && len(r.Answer)+len(r.Ns) == 0:
			slipped++
		case !r.Truncated && firstA(r) != "":
			normal++
		default:
			t.Errorf("ID %d: TC %v with answer %v", r.Id, r.Truncated, r.Answer)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(silence))
	if k, err := c.Read(buf); err == nil {
		t.Errorf("a reply (%d bytes) beyond the %d expected: dropped queries must get none", k, st.Allowed+st.Slipped)
	}
	if normal != burst || uint64(slipped) != st.Slipped {
		t.Errorf("%d normal and %d slipped replies; want %d and %d", normal, slipped, burst, st.Slipped)
	}

	co, err := dns.DialTimeout("tcp", s.tcp, clientTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	for i := range n {
		_ = co.SetDeadline(time.Now().Add(hangBound))
		q := query("rl.example.com.", dns.TypeA, uint16(1000+i))
		if err := co.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		r, err := co.ReadMsg()
		if err != nil {
			t.Fatalf("TCP query %d: %v", i, err)
		}
		if r.Id != q.Id || r.Rcode != dns.RcodeSuccess || r.Truncated || firstA(r) == "" {
			t.Fatalf("TCP query %d: ID %d rcode %s TC %v answer %v", i, r.Id, dns.RcodeToString[r.Rcode], r.Truncated, r.Answer)
		}
	}
	if after := lim.Stats(); after.Allowed+after.Slipped+after.Dropped != n {
		t.Errorf("TCP queries went through the limiter: %+v", after)
	}
}
