package server_test

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/acl"
	"github.com/shardns/shardns/dnsd/ratelimit"
	"github.com/shardns/shardns/dnsd/server"
)

// floodUDP sends n datagrams made by wire(i) from one socket, then reads
// the replies until silence has passed with none, and returns them. The
// flood is bounded in count (n) and in time (each read waits at most
// hangBound, and stops after n replies).
func floodUDP(t *testing.T, addr string, n int, wire func(i int) []byte) [][]byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		if _, err := c.Write(wire(i)); err != nil {
			t.Fatal(err)
		}
	}
	var replies [][]byte
	buf := make([]byte, 65535)
	deadline := time.Now().Add(hangBound)
	for len(replies) < n && time.Now().Before(deadline) {
		_ = c.SetReadDeadline(time.Now().Add(silence))
		k, err := c.Read(buf)
		if err != nil {
			break
		}
		replies = append(replies, append([]byte(nil), buf[:k]...))
	}
	return replies
}

// A client outside -allow flooding dnsd over UDP gets what any client over
// its limit gets: its burst of REFUSED answers, then one empty TC=1 reply
// in two (slip 2) and silence for the rest, so that dnsd reflects no more
// than it would for an allowed client. Unparsable datagrams, answered
// FORMERR, are limited too. Over TCP the refused client is not limited.
func TestRefusedClientsAreRateLimited(t *testing.T) {
	a, err := acl.Parse("127.0.0.2/32") // the test client, 127.0.0.1, is outside
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	lim := ratelimit.New(ratelimit.Config{Rate: 5, Burst: 5, Slip: 2, Now: clock.Now})
	s := newEdgeSetup(t, options{}, server.Config{ACL: a, Limiter: lim})

	const n, burst = 50, 5
	replies := floodUDP(t, s.udp, n, func(i int) []byte {
		return pack(t, ednsQuery("refused.example.com.", dns.TypeA, uint16(i), 1232, false))
	})
	var refused, slipped int
	for _, b := range replies {
		r := unpack(t, b)
		switch {
		case r.Rcode == dns.RcodeRefused && !r.Truncated:
			refused++
		case r.Rcode == dns.RcodeSuccess && r.Truncated && len(r.Answer) == 0:
			slipped++
		default:
			t.Errorf("ID %d: rcode %s TC %v", r.Id, dns.RcodeToString[r.Rcode], r.Truncated)
		}
	}
	const overLimit = n - burst
	if refused != burst || slipped != (overLimit+1)/2 {
		t.Errorf("%d of %d queries answered: %d REFUSED, %d slipped; want %d and %d, the rest dropped",
			len(replies), n, refused, slipped, burst, (overLimit+1)/2)
	}
	if st := lim.Stats(); st.Allowed != burst || st.Allowed+st.Slipped+st.Dropped != n {
		t.Errorf("limiter %+v after %d refused queries", st, n)
	}

	// The bucket is empty: garbage gets no more than one reply in two,
	// each a bare FORMERR header with TC set.
	before := lim.Stats()
	garbage := floodUDP(t, s.udp, 10, func(i int) []byte {
		return append(header(uint16(100+i), 0x0100, 1), 3, 'w', 'w', 'w') // the name never ends
	})
	for _, b := range garbage {
		if len(b) != 12 || b[3]&0x0F != dns.RcodeFormatError || b[2]&0x02 == 0 {
			t.Errorf("reply to garbage over the limit: %x, want a FORMERR header with TC", b)
		}
	}
	after := lim.Stats()
	if len(garbage) != 5 || after.Slipped-before.Slipped != 5 || after.Dropped-before.Dropped != 5 {
		t.Errorf("%d replies to 10 unparsable datagrams; limiter %+v then %+v", len(garbage), before, after)
	}

	// Over TCP the refused client's connection is closed at accept: no
	// answer, and nothing reaches the limiter.
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	if r, _, err := c.Exchange(ednsQuery("refused.example.com.", dns.TypeA, 0x7001, 1232, false), s.tcp); err == nil {
		t.Errorf("over TCP: answered %s, want the connection closed at accept", dns.RcodeToString[r.Rcode])
	}
	if st := lim.Stats(); st != after {
		t.Errorf("a TCP query went through the limiter: %+v, then %+v", after, st)
	}
}
