package server_test

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/cookie"
	"github.com/shardns/shardns/dnsd/ratelimit"
	"github.com/shardns/shardns/dnsd/server"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// testClient is where the tests' sockets send from.
var testClient = netip.MustParseAddr("127.0.0.1")

// clientCookie is the client cookie the tests send.
const clientCookie = "c1c2c3c4c5c6c7c8"

// newTestIssuer is an Issuer on clock with a fixed secret.
func newTestIssuer(t testing.TB, clock func() time.Time) *cookie.Issuer {
	t.Helper()
	sec, err := cookie.ParseSecret("00112233445566778899aabbccddeeff")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := cookie.New(cookie.Config{Secrets: []cookie.Secret{sec}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// withCookie returns q, given EDNS if it has none, carrying a COOKIE
// option with data, first among its options.
func withCookie(q *dns.Msg, data []byte) *dns.Msg {
	if q.IsEdns0() == nil {
		q.SetEdns0(1232, false)
	}
	opt := q.IsEdns0()
	opt.Option = append([]dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(data)}}, opt.Option...)
	return q
}

// cookieOf returns the data of m's COOKIE options: nil with none; the
// test fails on more than one.
func cookieOf(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	var out []byte
	for _, o := range opt.Option {
		if c, ok := o.(*dns.EDNS0_COOKIE); ok {
			if out != nil {
				t.Fatalf("two COOKIE options in %v", opt)
			}
			b, err := hex.DecodeString(c.Cookie)
			if err != nil {
				t.Fatal(err)
			}
			out = b
		}
	}
	return out
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkFresh fails unless got, the COOKIE of a reply, is the client cookie
// the query sent and a server cookie of ours for testClient, stamped now.
func checkFresh(t testing.TB, iss *cookie.Issuer, got []byte, clock func() time.Time, what string) {
	t.Helper()
	if len(got) != cookie.ReplyLen || !bytes.Equal(got[:cookie.ClientLen], mustHex(t, clientCookie)) {
		t.Fatalf("%s: reply COOKIE %x, want client cookie %s and a server cookie", what, got, clientCookie)
	}
	if v := iss.Check(got, testClient); v != cookie.Valid {
		t.Errorf("%s: the reply's server cookie checks %v", what, v)
	}
	if ts := int64(got[12])<<24 | int64(got[13])<<16 | int64(got[14])<<8 | int64(got[15]); ts != clock().Unix() {
		t.Errorf("%s: server cookie stamped %d, now is %d", what, ts, clock().Unix())
	}
}

// The shapes a query takes through the server: the common one (answered
// without unpacking, from L1 on the reading goroutine when fresh) and one
// with an NSID option that takes the general way.
var shapes = []struct {
	name string
	make func(name string, id uint16) *dns.Msg
}{
	{"common", func(name string, id uint16) *dns.Msg { return ednsQuery(name, dns.TypeA, id, 1232, false) }},
	{"general", func(name string, id uint16) *dns.Msg {
		q := ednsQuery(name, dns.TypeA, id, 1232, false)
		opt := q.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		return q
	}},
}

// Every answer to a query with a client cookie carries a server cookie
// (RFC 7873 §5.2.3), over UDP and TCP, on a miss and on a hit, whichever
// way the query takes: a fresh one for a client cookie alone, the same
// one echoed while it is under half an hour old, a renewed one after
// (RFC 9018 §4.3). A query without a cookie gets none.
func TestCookieOnEveryAnswer(t *testing.T) {
	clock := newFakeClock()
	iss := newTestIssuer(t, clock.Now)
	s := newEdgeSetup(t, options{now: clock.Now}, server.Config{Cookies: iss})
	id := uint16(0)
	for _, network := range networks {
		for _, shape := range shapes {
			t.Run(network+"/"+shape.name, func(t *testing.T) {
				name := network + "-" + shape.name + ".example.com."
				ask := func(data []byte) *dns.Msg {
					id++
					r := exchange(t, network, s.addr(network), withCookie(shape.make(name, id), data))
					if r.Rcode != dns.RcodeSuccess || firstA(r) == "" {
						t.Fatalf("rcode %s answer %v", dns.RcodeToString[r.Rcode], r.Answer)
					}
					return r
				}
				madeAgo := func(d time.Duration) []byte {
					c := newTestIssuer(t, func() time.Time { return clock.Now().Add(-d) })
					return c.AppendReply(nil, mustHex(t, clientCookie), cookie.ClientOnly, testClient)
				}
				miss := cookieOf(t, ask(mustHex(t, clientCookie)))
				checkFresh(t, iss, miss, clock.Now, "miss, client cookie alone")

				clock.Advance(time.Second)
				if hit := cookieOf(t, ask(miss)); !bytes.Equal(hit, miss) {
					t.Errorf("hit with a valid cookie: reply COOKIE %x, want it echoed: %x", hit, miss)
				}
				checkFresh(t, iss, cookieOf(t, ask(mustHex(t, clientCookie))), clock.Now, "hit, client cookie alone")
				checkFresh(t, iss, cookieOf(t, ask(madeAgo(31*time.Minute))), clock.Now, "hit, a cookie 31 minutes old")

				clock.Advance(10 * time.Minute) // past the TTL (300 s): a miss
				if again := cookieOf(t, ask(miss)); !bytes.Equal(again, miss) {
					t.Errorf("miss with a valid cookie 10 minutes old: reply COOKIE %x, want it echoed: %x", again, miss)
				}
				clock.Advance(time.Second)
				checkFresh(t, iss, cookieOf(t, ask(madeAgo(59*time.Minute))), clock.Now, "hit, a cookie 59 minutes old")

				id++
				if r := exchange(t, network, s.addr(network), shape.make(name, id)); cookieOf(t, r) != nil {
					t.Errorf("a query without a cookie got one: %x", cookieOf(t, r))
				}
			})
		}
	}
	if n := s.auth.Count("udp-common.example.com.", dns.TypeA); n != 2 {
		t.Errorf("upstream asked %d times for udp-common, want 2 (a miss, hits, a miss, hits)", n)
	}
}

// Error replies, local answers and SERVFAIL carry the cookie too.
func TestCookieOnErrorReplies(t *testing.T) {
	clock := newFakeClock()
	iss := newTestIssuer(t, clock.Now)
	s := newEdgeSetup(t, options{now: clock.Now, budget: 300 * time.Millisecond}, server.Config{Cookies: iss})
	for _, network := range networks {
		for _, tc := range []struct {
			name  string
			q     *dns.Msg
			rcode int
		}{
			{"ANY", query("any.example.com.", dns.TypeANY, 1), dns.RcodeSuccess},
			{"AXFR", query("example.com.", dns.TypeAXFR, 2), dns.RcodeRefused},
			{"meta type", query("meta.example.com.", 200, 3), dns.RcodeFormatError},
			{"NXDOMAIN", query("nx.example.com.", dns.TypeA, 4), dns.RcodeNameError},
			{"SERVFAIL", query("hole-"+network+".example.com.", dns.TypeA, 5), dns.RcodeServerFailure},
			{"SERVFAIL, general way", shapes[1].make("hole-nsid-"+network+".example.com.", 6), dns.RcodeServerFailure},
		} {
			r := exchange(t, network, s.addr(network), withCookie(tc.q, mustHex(t, clientCookie)))
			if r.Rcode != tc.rcode {
				t.Errorf("%s %s: rcode %s, want %s", network, tc.name, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			checkFresh(t, iss, cookieOf(t, r), clock.Now, network+" "+tc.name)
		}
	}
}

// A server cookie that is not ours, or that has expired or is stamped too
// far ahead, gets BADCOOKIE over UDP (RFC 7873 §5.2.4), with a fresh
// cookie to retry with, and nothing is looked up. Over TCP, where the
// handshake proves the address, the query is answered, with a fresh
// cookie (§5.2.3). A COOKIE option of a length RFC 7873 refuses gets
// FORMERR either way.
func TestBadCookie(t *testing.T) {
	clock := newFakeClock()
	iss := newTestIssuer(t, clock.Now)
	s := newEdgeSetup(t, options{now: clock.Now}, server.Config{Cookies: iss})

	valid := func(at time.Duration) []byte {
		c := newTestIssuer(t, func() time.Time { return clock.Now().Add(at) })
		return c.AppendReply(nil, mustHex(t, clientCookie), cookie.ClientOnly, testClient)
	}
	tampered := valid(0)
	tampered[len(tampered)-1] ^= 1
	otherClient := newTestIssuer(t, clock.Now).AppendReply(nil, mustHex(t, clientCookie), cookie.ClientOnly, netip.MustParseAddr("127.0.0.9"))
	v2 := valid(0)
	v2[cookie.ClientLen] = 2 // a version this server does not make
	bad := []struct {
		name string
		data []byte
	}{
		{"tampered hash", tampered},
		{"another client's", otherClient},
		{"version 2", v2},
		{"8-octet server cookie", append(mustHex(t, clientCookie), 1, 2, 3, 4, 5, 6, 7, 8)},
		{"an hour and a second old", valid(-time.Hour - time.Second)},
		{"stamped 5 minutes and a second ahead", valid(5*time.Minute + time.Second)},
	}
	id := uint16(0)
	for _, shape := range shapes {
		for _, tc := range bad {
			name := "bad.example.com."
			id++
			r := exchange(t, "udp", s.udp, withCookie(shape.make(name, id), tc.data))
			if r.Rcode != dns.RcodeBadCookie || len(r.Answer) != 0 || r.Truncated {
				t.Errorf("%s, %s, UDP: rcode %s, %d answers, TC %v; want BADCOOKIE", shape.name, tc.name, dns.RcodeToString[r.Rcode], len(r.Answer), r.Truncated)
			}
			if len(r.Question) != 1 || r.Question[0].Name != name {
				t.Errorf("%s, %s: question %v", shape.name, tc.name, r.Question)
			}
			checkFresh(t, iss, cookieOf(t, r), clock.Now, shape.name+", "+tc.name+", UDP")

			id++
			r = exchange(t, "tcp", s.tcp, withCookie(shape.make("tcp-"+name, id), tc.data))
			if r.Rcode != dns.RcodeSuccess || firstA(r) == "" {
				t.Errorf("%s, %s, TCP: rcode %s answer %v; want an answer", shape.name, tc.name, dns.RcodeToString[r.Rcode], r.Answer)
			}
			checkFresh(t, iss, cookieOf(t, r), clock.Now, shape.name+", "+tc.name+", TCP")
		}
		for _, n := range []int{0, 1, 7, 9, 15, 41, 48} {
			for _, network := range networks {
				id++
				b := rawExchange(t, network, s.addr(network), pack(t, withCookie(shape.make("malformed.example.com.", id), make([]byte, n))), hangBound)
				if b == nil {
					t.Fatalf("%s, %d-octet COOKIE over %s: no reply", shape.name, n, network)
				}
				r := unpack(t, b)
				if r.Rcode != dns.RcodeFormatError || cookieOf(t, r) != nil {
					t.Errorf("%s, %d-octet COOKIE over %s: rcode %s COOKIE %x, want FORMERR and none", shape.name, n, network, dns.RcodeToString[r.Rcode], cookieOf(t, r))
				}
			}
		}
	}
	if n := s.auth.Count("bad.example.com.", dns.TypeA); n != 0 {
		t.Errorf("BADCOOKIE queries reached the upstream %d times", n)
	}
	if n := s.auth.Count("malformed.example.com.", dns.TypeA); n != 0 {
		t.Errorf("queries with a malformed COOKIE reached the upstream %d times", n)
	}
}

// A client that returns a valid server cookie is let past the rate limit,
// as BIND and Unbound do: the cookie proves it receives what is sent to
// its address, so answering it reflects nothing. The same client's queries
// without a cookie, with a client cookie alone, or with a bad one are
// limited (BADCOOKIE replies too).
func TestValidCookiePassesRateLimit(t *testing.T) {
	clock := newFakeClock()
	iss := newTestIssuer(t, clock.Now)
	lim := ratelimit.New(ratelimit.Config{Rate: 5, Burst: 5, Slip: 2, Now: clock.Now})
	s := newEdgeSetup(t, options{now: clock.Now}, server.Config{Cookies: iss, Limiter: lim})

	// Learn a cookie over TCP, which the limiter does not see.
	r := exchange(t, "tcp", s.tcp, withCookie(ednsQuery("rl.example.com.", dns.TypeA, 1, 1232, false), mustHex(t, clientCookie)))
	good := cookieOf(t, r)
	checkFresh(t, iss, good, clock.Now, "over TCP")
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 1

	const n, burst = 40, 5
	for _, tc := range []struct {
		name    string
		data    []byte // nil: no cookie
		limited bool
		rcode   int
	}{
		{"no cookie", nil, true, dns.RcodeSuccess},
		{"a valid cookie", good, false, dns.RcodeSuccess},
		{"a client cookie alone", mustHex(t, clientCookie), true, dns.RcodeSuccess},
		{"a bad cookie", bad, true, dns.RcodeBadCookie},
	} {
		for _, shape := range shapes {
			before := lim.Stats()
			replies := floodUDP(t, s.udp, n, func(i int) []byte {
				q := shape.make("rl.example.com.", uint16(i))
				if tc.data != nil {
					q = withCookie(q, tc.data)
				}
				return pack(t, q)
			})
			after := lim.Stats()
			var answered, slipped int
			for _, b := range replies {
				r := unpack(t, b)
				switch {
				case r.Truncated && len(r.Answer) == 0 && r.Rcode == dns.RcodeSuccess:
					slipped++
				case !r.Truncated && r.Rcode == tc.rcode:
					answered++
				default:
					t.Errorf("%s, %s: rcode %s TC %v", tc.name, shape.name, dns.RcodeToString[r.Rcode], r.Truncated)
				}
				if tc.data != nil {
					if got := cookieOf(t, r); len(got) != cookie.ReplyLen || iss.Check(got, testClient) != cookie.Valid {
						t.Errorf("%s, %s: reply COOKIE %x", tc.name, shape.name, got)
					}
				}
			}
			asked := (after.Allowed + after.Slipped + after.Dropped) - (before.Allowed + before.Slipped + before.Dropped)
			if !tc.limited {
				if answered != n || asked != 0 {
					t.Errorf("%s, %s: %d of %d answered, %d slipped, limiter asked %d times; want all answered, the limiter not asked",
						tc.name, shape.name, answered, n, slipped, asked)
				}
				continue
			}
			// The bucket starts empty but for the first flood.
			if asked != n || answered > burst || slipped != int(after.Slipped-before.Slipped) || slipped == 0 || answered+slipped >= n {
				t.Errorf("%s, %s: %d answered and %d slipped of %d, limiter %+v then %+v; want the limit applied",
					tc.name, shape.name, answered, slipped, n, before, after)
			}
		}
	}
}

// With cookies off, a COOKIE option is ignored, as by a server that does
// not know it: no cookie in the reply, and a malformed one is no error.
func TestCookiesOff(t *testing.T) {
	s := newEdgeSetup(t, options{}, server.Config{})
	for _, network := range networks {
		for _, data := range [][]byte{mustHex(t, clientCookie), make([]byte, 9), make([]byte, 24)} {
			r := exchange(t, network, s.addr(network), withCookie(ednsQuery("off.example.com.", dns.TypeA, 1, 1232, false), data))
			if r.Rcode != dns.RcodeSuccess || firstA(r) == "" || cookieOf(t, r) != nil {
				t.Errorf("%s, %d-octet cookie: rcode %s answer %v COOKIE %x", network, len(data), dns.RcodeToString[r.Rcode], r.Answer, cookieOf(t, r))
			}
		}
	}
}

// With cookies on, the common way still gives exactly the bytes the
// general way gives, for every kind of COOKIE option, as cookies and
// entries age: the cookie is patched into the wire-form reply the same way
// the general way puts it in.
func TestCommonWayCookiesMatchGeneralWay(t *testing.T) {
	var now func() time.Time
	iss := newTestIssuer(t, func() time.Time { return now() })
	p := newDiffPair(t, func() server.Config { return server.Config{Cookies: iss} })
	now = p.clock.Now
	madeAt := func(d time.Duration, addr netip.Addr) []byte {
		c := newTestIssuer(t, func() time.Time { return now().Add(d) })
		return c.AppendReply(nil, mustHex(t, clientCookie), cookie.ClientOnly, addr)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	qs := diffQueries(t, rng, 1500)
	kinds := []func() []byte{
		func() []byte { return mustHex(t, clientCookie) },
		func() []byte { return madeAt(0, testClient) },
		func() []byte { return madeAt(-40*time.Minute, testClient) },
		func() []byte { return madeAt(-2*time.Hour, testClient) },
		func() []byte { return madeAt(time.Hour, testClient) },
		func() []byte { return madeAt(0, netip.MustParseAddr("192.0.2.1")) },
		func() []byte { return make([]byte, 12) },
	}
	common := 0
	for round, step := range []time.Duration{0, 2 * time.Second, 100 * time.Second} {
		p.clock.Advance(step)
		for i, q := range qs {
			m := new(dns.Msg)
			if err := m.Unpack(q.wire); err != nil || m.IsEdns0() == nil || len(m.Question) != 1 {
				continue // no room for a cookie, or not a query to give one
			}
			opt := m.IsEdns0()
			kept := opt.Option[:0]
			for _, o := range opt.Option {
				if o.Option() != dns.EDNS0COOKIE {
					kept = append(kept, o)
				}
			}
			opt.Option = kept
			q.wire = pack(t, withCookie(m, kinds[(i+round)%len(kinds)]()))
			if p.serveBoth(t, q) {
				common++
			}
		}
	}
	if common == 0 {
		t.Fatal("no query with a cookie was answered the common way")
	}
}

// A fresh hit with a cookie, client cookie alone or a valid server cookie,
// allocates nothing either.
func TestCommonWayCookieHitDoesNotAllocate(t *testing.T) {
	var now func() time.Time
	iss := newTestIssuer(t, func() time.Time { return now() })
	p := newDiffPair(t, func() server.Config { return server.Config{Cookies: iss} })
	now = p.clock.Now
	peer := transport.Peer{Addr: netip.AddrPortFrom(testClient, 40000)}
	valid := iss.AppendReply(nil, mustHex(t, clientCookie), cookie.ClientOnly, testClient)
	for _, data := range [][]byte{mustHex(t, clientCookie), valid} {
		wire := pack(t, withCookie(ednsQuery("www.diff.test.", dns.TypeA, 1, 1232, false), data))
		dst := p.general.ServeGeneral(t.Context(), wire, peer, nil) // fills the cache
		reply, done := p.common.ServeCommon(wire, peer, dst[:0])
		if !done {
			t.Fatal("a fresh hit with a cookie did not take the common way")
		}
		if got := cookieOf(t, unpack(t, reply)); len(got) != cookie.ReplyLen {
			t.Fatalf("reply COOKIE %x", got)
		}
		if raceEnabled {
			continue // the race detector allocates
		}
		if allocs := testing.AllocsPerRun(100, func() { p.common.ServeMessage(t.Context(), wire, peer, dst[:0]) }); allocs != 0 {
			t.Errorf("%d-octet cookie: %v allocations per hit, want 0", len(data), allocs)
		}
	}
}

// A hit from Redis carries the cookie too, over UDP (read with the other
// datagrams of its batch) and TCP.
func TestCookieOnRedisHit(t *testing.T) {
	rs := redistest.Start(t)
	tier, err := cache.NewRing(cache.RedisConfig{Addrs: []string{rs.Addr}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tier.Close() })
	clock := newFakeClock()
	iss := newTestIssuer(t, clock.Now)
	s := newEdgeSetup(t, options{noL1: true, redis: tier, now: clock.Now}, server.Config{Cookies: iss})
	const name = "redis-cookie.example.com."
	first := exchange(t, "udp", s.udp, withCookie(ednsQuery(name, dns.TypeA, 1, 1232, false), mustHex(t, clientCookie)))
	checkFresh(t, iss, cookieOf(t, first), clock.Now, "miss")
	waitStored(t, rs, "dns:{redis-cookie.example.com.}:A:IN")
	for i, network := range networks {
		for _, shape := range shapes {
			r := exchange(t, network, s.addr(network), withCookie(shape.make(name, uint16(10+i)), cookieOf(t, first)))
			if firstA(r) == "" {
				t.Fatalf("%s %s: answer %v", network, shape.name, r.Answer)
			}
			if got := cookieOf(t, r); !bytes.Equal(got, cookieOf(t, first)) {
				t.Errorf("%s %s: Redis hit with a valid cookie: reply COOKIE %x, want %x", network, shape.name, got, cookieOf(t, first))
			}
		}
	}
	if n := s.auth.Count(name, dns.TypeA); n != 1 {
		t.Errorf("upstream asked %d times, want 1: the rest were Redis hits", n)
	}
}
