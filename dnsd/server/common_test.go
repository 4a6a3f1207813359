package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/acl"
	"github.com/shardns/shardns/dnsd/ratelimit"
	"github.com/shardns/shardns/dnsd/server"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/testutil/zonetest"
	"github.com/shardns/shardns/resolverd/resolve"
	"github.com/shardns/shardns/resolverd/zones"
)

// diffZone is served from a local zone, so every answer shape is at hand:
// CNAME chains, NXDOMAIN and NODATA with the SOA, RRsets of mixed TTLs,
// and answers too large for 512 bytes, or for any UDP size.
const diffZone = `$ORIGIN diff.test.
$TTL 3600
@       IN SOA ns hostmaster 1 7200 900 1209600 1800
@       IN NS  ns
ns      IN A   192.0.2.53
www     IN A   192.0.2.1
www     IN A   192.0.2.2
www 7200 IN AAAA 2001:db8::1
alias   IN CNAME alias2
alias2  300 IN CNAME www
out     IN CNAME www.diff.test.
mail    IN MX  10 mx1
mail    IN MX  20 mx2
mx1     IN A   192.0.2.25
mx2     IN A   192.0.2.26
under_score IN A 192.0.2.3
*.wild  IN A   192.0.2.4
short   300 IN A 192.0.2.5
`

// writeDiffZone writes diffZone, with a TXT RRset that fits neither 512
// bytes nor MaxUDPSize and one that fits only the latter, into a folder
// and loads it.
func writeDiffZone(t *testing.T) *zones.Authority {
	t.Helper()
	var b strings.Builder
	b.WriteString(diffZone)
	for i := range 12 {
		fmt.Fprintf(&b, "big IN TXT \"%s\"\n", strings.Repeat(string(rune('a'+i)), 200))
	}
	for i := range 3 {
		fmt.Fprintf(&b, "mid IN TXT \"%s\"\n", strings.Repeat(string(rune('a'+i)), 200))
	}
	return zonetest.Load(t, "diff.test.zone", b.String())
}

// diffPair is two servers over one chain and one cache: common answers
// as Serve does, the common way where it can; general is asked through
// ServeGeneral, which never takes it. Replies must match byte for byte.
type diffPair struct {
	clock           *fakeClock
	common, general *server.Server
}

func newDiffPair(t *testing.T, cfg func() server.Config) *diffPair {
	t.Helper()
	return newDiffPairL1(t, cfg, true)
}

// newDiffPairL1 is newDiffPair with the common server's L1 on or off.
func newDiffPairL1(t *testing.T, cfg func() server.Config, l1 bool) *diffPair {
	t.Helper()
	res, err := resolve.New(writeDiffZone(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &diffPair{clock: newFakeClock()}
	chain := newChain(options{now: p.clock.Now, stale: time.Hour}, &inProcess{r: res})
	c := cfg()
	c.Chain = chain
	if !l1 {
		c.Chain = noL1Peek{chain}
	}
	p.common = server.New(c)
	g := cfg()
	g.Chain = chain
	p.general = server.New(g)
	return p
}

// noL1Peek is a chain whose Peek of L1 alone finds nothing: the reading
// goroutine's call answers no hit, and every common query is left to a
// wait call, whose Peek reads every tier, L1 included (the first Peek did
// not read it).
type noL1Peek struct{ *lookup.Chain }

func (c noL1Peek) Peek(ctx context.Context, ps []lookup.Peeked, l1Only bool) {
	if !l1Only {
		for i := range ps {
			ps[i].L1Missed = false
		}
		c.Chain.Peek(ctx, ps, false)
	}
}

// diffQuery is one query to send both ways.
type diffQuery struct {
	name  string
	wire  []byte
	tcp   bool
	from  netip.AddrPort
	plain bool // of the common shape: a fresh hit must be answered the common way
}

// serveBoth answers q through the general server, then the common one, at
// the same instant on the same cache, and fails on any difference. It
// reports whether the common way answered by itself.
func (p *diffPair) serveBoth(t *testing.T, q diffQuery) bool {
	t.Helper()
	peer := transport.Peer{Addr: q.from, TCP: q.tcp}
	want := p.general.ServeGeneral(t.Context(), q.wire, peer, nil)
	got := p.common.ServeMessage(t.Context(), q.wire, peer, nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s (tcp %v): the common way replied\n%x\nthe general way\n%x\nquery %x", q.name, q.tcp, got, want, q.wire)
	}
	direct, done := p.common.ServeCommon(q.wire, peer, nil)
	if done && !bytes.Equal(direct, want) {
		t.Fatalf("%s: serveCommon replied\n%x\nwant\n%x", q.name, direct, want)
	}
	return done
}

// mixCase spells name in a random mix of cases.
func mixCase(rng *rand.Rand, name string) string {
	b := []byte(name)
	for i, c := range b {
		if 'a' <= c && c <= 'z' && rng.IntN(2) == 0 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// diffQueries makes n varied queries: names and types of every answer
// shape, case mixes, flags, EDNS or not with sizes and DO, options, UDP
// and TCP, and messages of other shapes that must take the general way.
func diffQueries(t *testing.T, rng *rand.Rand, n int) []diffQuery {
	t.Helper()
	names := []string{
		"www.diff.test.", "alias.diff.test.", "alias2.diff.test.", "out.diff.test.", "mail.diff.test.",
		"big.diff.test.", "mid.diff.test.", "nope.diff.test.", "deep.nope.diff.test.", "under_score.diff.test.",
		"x-1.wild.diff.test.", "*.wild.diff.test.", "diff.test.", "short.diff.test.", "ns.diff.test.",
	}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeCNAME, dns.TypeNS,
		dns.TypeSOA, dns.TypeHTTPS, dns.TypeSRV, 65280}
	sizes := []uint16{0, 100, 512, 700, 1232, 1400, 4096, 65535}
	client := netip.MustParseAddrPort("127.0.0.1:40000")
	var qs []diffQuery
	for range n {
		m := new(dns.Msg)
		name := mixCase(rng, names[rng.IntN(len(names))])
		m.SetQuestion(name, types[rng.IntN(len(types))])
		m.Id = uint16(rng.UintN(1 << 16))
		m.RecursionDesired = rng.IntN(8) != 0
		m.AuthenticatedData = rng.IntN(4) == 0
		m.CheckingDisabled = rng.IntN(8) == 0
		if rng.IntN(4) != 0 {
			m.SetEdns0(sizes[rng.IntN(len(sizes))], rng.IntN(3) == 0)
			opt := m.IsEdns0()
			switch rng.IntN(6) {
			case 0:
				opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
			case 1:
				opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, rng.IntN(40))})
			case 2:
				opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
			}
		}
		wire := pack(t, m)
		plain := true // every name, type and flag above is of the common shape
		if opt := m.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				plain = plain && o.Option() != dns.EDNS0NSID
			}
		}
		qs = append(qs, diffQuery{name: name, wire: wire, tcp: rng.IntN(4) == 0, from: client, plain: plain})
	}
	// Other shapes, and shapes the common way must leave alone.
	odd := func(name string, wire []byte) {
		qs = append(qs, diffQuery{name: name, wire: wire, from: client}, diffQuery{name: name, wire: wire, tcp: true, from: client})
	}
	base := pack(t, ednsQuery("www.diff.test.", dns.TypeA, 7, 1232, false))
	noEDNS := pack(t, query("www.diff.test.", dns.TypeA, 8))
	withFlag := func(wire []byte, byteIdx int, bits byte) []byte {
		w := append([]byte(nil), wire...)
		w[byteIdx] |= bits
		return w
	}
	odd("trailing byte", append(append([]byte(nil), noEDNS...), 0))
	odd("TC set", withFlag(noEDNS, 2, 0x02))
	odd("AA set", withFlag(noEDNS, 2, 0x04))
	odd("Z set", withFlag(noEDNS, 3, 0x40))
	odd("RA set", withFlag(noEDNS, 3, 0x80))
	odd("RCODE set", withFlag(noEDNS, 3, 0x03))
	odd("opcode 2", withFlag(noEDNS, 2, 0x10))
	v1 := append([]byte(nil), base...)
	v1[len(v1)-5] = 1 // EDNS version
	odd("EDNS version 1", v1)
	ext := append([]byte(nil), base...)
	ext[len(ext)-6] = 1 // extended RCODE
	odd("extended RCODE", ext)
	two := query("www.diff.test.", dns.TypeA, 9)
	two.Question = append(two.Question, two.Question[0])
	odd("two questions", pack(t, two))
	for _, qt := range []uint16{dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeMAILA, dns.TypeTSIG, 0} {
		odd("type "+dns.TypeToString[qt], pack(t, query("www.diff.test.", qt, 10)))
	}
	ch := query("www.diff.test.", dns.TypeA, 11)
	ch.Question[0].Qclass = dns.ClassCHAOS
	odd("class CH", pack(t, ch))
	odd("escaped name", pack(t, query(`w\.ww.diff.test.`, dns.TypeA, 12)))
	odd("high octet", pack(t, query(`\200.diff.test.`, dns.TypeA, 13)))
	odd("root", pack(t, query(".", dns.TypeNS, 14)))
	odd("outside the zone", pack(t, query("example.net.", dns.TypeA, 15)))
	ptr := append(header(16, 0x0100, 1), 0xC0, 12)
	odd("pointer in question", append(ptr, typeClassA...))
	odd("no question end", append(header(17, 0x0100, 1), 3, 'w', 'w', 'w'))
	odd("name only", append(header(18, 0x0100, 1), 3, 'w', 'w', 'w', 0))
	long := append(header(19, 0x0100, 1), labels(4, 63)...)
	odd("name of 257 octets", append(long, typeClassA...))
	fits := append(header(20, 0x0100, 1), labels(3, 63)...)
	fits = append(fits[:len(fits)-1], 61)
	fits = append(fits, bytes.Repeat([]byte{'b'}, 61)...)
	odd("name of 255 octets", append(append(fits, 0), typeClassA...))
	answerCount := append([]byte(nil), noEDNS...)
	answerCount[7] = 1
	odd("ANCOUNT 1", answerCount)
	twoOPT := ednsQuery("www.diff.test.", dns.TypeA, 21, 1232, false)
	twoOPT.Extra = append(twoOPT.Extra, twoOPT.Extra[0])
	odd("two OPT", pack(t, twoOPT))
	optName := append([]byte(nil), base...)
	optName[len(optName)-11] = 1 // OPT owner not the root: a bad name
	odd("OPT owner", optName)
	badOpt := append([]byte(nil), base...)
	binary.BigEndian.PutUint16(badOpt[len(badOpt)-2:], 4) // RDLENGTH past the end
	odd("OPT RDLENGTH", badOpt)
	return qs
}

// The common way gives exactly the bytes the general way gives, for every
// kind of query and answer, as entries age, over UDP and TCP.
func TestCommonWayMatchesGeneralWay(t *testing.T) {
	p := newDiffPair(t, func() server.Config { return server.Config{} })
	rng := rand.New(rand.NewPCG(1, 2))
	qs := diffQueries(t, rng, 3000)
	// Ages stay under nine tenths of every TTL before the last round, so
	// prefetch never races the comparison; the last step takes the names
	// with a TTL of 300 s past it, to be answered afresh, then from L1.
	steps := []time.Duration{0, 1400 * time.Millisecond, 7 * time.Second, 200 * time.Second, 150 * time.Second}
	common, total := 0, 0
	for round, step := range steps {
		p.clock.Advance(step)
		for _, q := range qs {
			done := p.serveBoth(t, q)
			if done {
				common++
			}
			total++
			// After the first round every answer is cached, and fresh
			// until the last.
			if q.plain && !done && round > 0 && round < len(steps)-1 {
				t.Fatalf("round %d: %s (%x) was not answered the common way", round, q.name, q.wire)
			}
			if !q.plain && done {
				t.Fatalf("%s (%x) was answered the common way", q.name, q.wire)
			}
		}
	}
	if common == 0 {
		t.Fatal("no query was answered the common way")
	}
	t.Logf("%d of %d queries answered the common way", common, total)
}

// With no L1 to answer from, every common query still takes the common
// way, through the chain (the cache, the resolver), and its replies are
// the general way's, byte for byte: fresh, aged, stale and missed answers,
// every shape of the zone.
func TestCommonLookupMatchesGeneralWay(t *testing.T) {
	p := newDiffPairL1(t, func() server.Config { return server.Config{} }, false)
	rng := rand.New(rand.NewPCG(5, 6))
	qs := diffQueries(t, rng, 2000)
	for _, step := range []time.Duration{0, 1400 * time.Millisecond, 200 * time.Second, 2 * time.Hour} {
		p.clock.Advance(step)
		for _, q := range qs {
			if p.serveBoth(t, q) {
				t.Fatalf("%s was answered from an L1 that is off", q.name)
			}
		}
	}
}

// A client outside the ACL is refused, and a rate-limited one dropped or
// slipped, exactly as the general way does; the limiter is asked once per
// message whichever way it takes.
func TestCommonWayACLAndRateLimit(t *testing.T) {
	var lims []*ratelimit.Limiter
	allow, err := acl.Parse("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	p := newDiffPair(t, func() server.Config {
		lim := ratelimit.New(ratelimit.Config{Rate: 5, Burst: 5, Slip: 2, Now: newFakeClock().Now})
		lims = append(lims, lim)
		return server.Config{ACL: allow, Limiter: lim}
	})
	rng := rand.New(rand.NewPCG(3, 4))
	inside := netip.MustParseAddrPort("127.0.0.1:40000")
	outside := netip.MustParseAddrPort("192.0.2.200:40000")
	for i, q := range diffQueries(t, rng, 300) {
		q.from = inside
		if i%3 == 0 {
			q.from = outside
		}
		peer := transport.Peer{Addr: q.from, TCP: q.tcp}
		want := p.general.ServeGeneral(t.Context(), q.wire, peer, nil)
		got := p.common.ServeMessage(t.Context(), q.wire, peer, nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("query %d %s from %v: the common way replied\n%x\nthe general way\n%x", i, q.name, q.from, got, want)
		}
	}
	if a, b := lims[0].Stats(), lims[1].Stats(); a != b {
		t.Errorf("limiter of the common server %+v, of the general one %+v", a, b)
	}
	if st := lims[0].Stats(); st.Dropped == 0 || st.Slipped == 0 {
		t.Errorf("limiter %+v: the test limited no one", st)
	}
}

// A fresh hit of the common shape allocates nothing.
func TestCommonWayHitDoesNotAllocate(t *testing.T) {
	p := newDiffPair(t, func() server.Config { return server.Config{} })
	peer := transport.Peer{Addr: netip.MustParseAddrPort("127.0.0.1:40000")}
	wire := pack(t, ednsQuery("WwW.diff.test.", dns.TypeA, 1, 1232, false))
	dst := p.general.ServeGeneral(t.Context(), wire, peer, nil) // fills the cache
	if _, done := p.common.ServeCommon(wire, peer, dst[:0]); !done {
		t.Fatal("a fresh hit did not take the common way")
	}
	if raceEnabled {
		return // the race detector allocates
	}
	allocs := testing.AllocsPerRun(100, func() { p.common.ServeMessage(t.Context(), wire, peer, dst[:0]) })
	if allocs != 0 {
		t.Errorf("%v allocations per hit, want 0", allocs)
	}
}

// With rate limiting on, a fresh hit of the common shape is still answered
// by the reader's call, the limiter asked once for it, with no allocation.
func TestCommonWayHitUnderRateLimit(t *testing.T) {
	var lims []*ratelimit.Limiter
	p := newDiffPair(t, func() server.Config {
		lim := ratelimit.New(ratelimit.Config{Rate: 1e6, Burst: 1e6})
		lims = append(lims, lim)
		return server.Config{Limiter: lim}
	})
	peer := transport.Peer{Addr: netip.MustParseAddrPort("127.0.0.1:40000")}
	wire := pack(t, ednsQuery("www.diff.test.", dns.TypeA, 1, 1232, false))
	dst := p.general.ServeGeneral(t.Context(), wire, peer, nil) // fills the cache
	reply, done := p.common.ServeCommon(wire, peer, dst[:0])
	if !done || !bytes.Equal(reply, p.general.ServeGeneral(t.Context(), wire, peer, nil)) {
		t.Fatalf("a fresh hit under rate limiting: answered by the reader %v, reply %x", done, reply)
	}
	if st := lims[0].Stats(); st.Allowed != 1 {
		t.Errorf("limiter %+v: want it asked once", st)
	}
	if raceEnabled {
		return // the race detector allocates
	}
	if allocs := testing.AllocsPerRun(100, func() { p.common.ServeCommon(wire, peer, dst[:0]) }); allocs != 0 {
		t.Errorf("%v allocations per hit under rate limiting, want 0", allocs)
	}
}
