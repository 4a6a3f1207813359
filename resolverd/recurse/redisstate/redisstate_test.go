package redisstate

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/testutil/redistest"
	"github.com/shardns/shardns/resolverd/recurse"
)

// open starts a Store and Servers over a Ring of one real redis-server.
func open(t *testing.T) (*Store, *Servers, *redistest.Server, *prometheus.Registry) {
	t.Helper()
	srv := redistest.Start(t)
	ring, err := cache.NewRing(cache.RedisConfig{Addrs: []string{srv.Addr}, Timeout: 200 * time.Millisecond, MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ring.Close() })
	reg := prometheus.NewRegistry()
	st, sv, err := New(Config{Client: ring.Client(), Timeout: 200 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sv.Close(); st.Close() })
	return st, sv, srv, reg
}

func flush(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func exampleDelegation(zone string) *recurse.Delegation {
	return &recurse.Delegation{
		Zone: zone, TTL: 3600,
		NS: []string{"ns1." + zone, "ns.elsewhere.test."},
		Addrs: map[string][]netip.Addr{
			"ns1." + zone: {netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")},
		},
	}
}

// TestStoreRoundTrip: a delegation and a DNSKEY answer with its RRSIG
// written by one Store are read by another over the same Redis, equal,
// with the Redis TTL of the record TTL, and the answer's TTLs aged.
func TestStoreRoundTrip(t *testing.T) {
	a, _, srv, _ := open(t)
	d := exampleDelegation("example.test.")
	a.PutDelegation(d, time.Hour)
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeDNSKEY)
	key, _ := dns.NewRR("example.test. 3600 IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==")
	sig, _ := dns.NewRR("example.test. 3600 IN RRSIG DNSKEY 13 2 3600 20300101000000 20200101000000 12345 example.test. oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3DTJXUAfI/M0zmO/zz8bW0Rznl8O3tGNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkGJ5D6fwFm8nN+6pBzeDQfsS3Ap3o=")
	m.Answer = []dns.RR{key, sig}
	a.PutAnswer("example.test.", dns.TypeDNSKEY, m, time.Hour)
	flush(t, a)

	b, _, _ := func() (*Store, *Servers, error) {
		ring, err := cache.NewRing(cache.RedisConfig{Addrs: []string{srv.Addr}, MaxBatch: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ring.Close() })
		return New(Config{Client: ring.Client(), Now: func() time.Time { return time.Now().Add(10 * time.Second) }})
	}()
	t.Cleanup(func() { b.Close() })
	got, ok := b.Delegation("example.test.")
	if !ok || !reflect.DeepEqual(got, d) {
		t.Fatalf("delegation: %v %+v, want %+v", ok, got, d)
	}
	if _, ok := b.Delegation("other.test."); ok {
		t.Error("a delegation never written was found")
	}
	ans, ok := b.Answer("example.test.", dns.TypeDNSKEY)
	if !ok || len(ans.Answer) != 2 {
		t.Fatalf("answer: %v %v", ok, ans)
	}
	for _, rr := range ans.Answer {
		if ttl := rr.Header().Ttl; ttl < 3580 || ttl > 3590 {
			t.Errorf("TTL of %s not aged by 10s: %d", rr.Header().Name, ttl)
		}
	}
	if ans.Answer[1].(*dns.RRSIG).Signature != sig.(*dns.RRSIG).Signature {
		t.Error("RRSIG changed on the way")
	}
	c := srv.Client()
	defer c.Close()
	ttl, err := c.PTTL(context.Background(), DelegationKey("example.test.")).Result()
	if err != nil || ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("Redis TTL of the delegation %v, %v; want the hour written", ttl, err)
	}
}

// TestPlantedValuesIgnored: under a zone's key, a delegation of another
// zone, garbage, an older version, a value of the other kind and an
// oversized value are each ignored (a miss) and counted by reason.
func TestPlantedValuesIgnored(t *testing.T) {
	s, _, srv, reg := open(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	now := time.Now()
	other := encodeDelegation(exampleDelegation("evil.test."), now, time.Hour)
	old := append([]byte(nil), encodeDelegation(exampleDelegation("victim.test."), now, time.Hour)...)
	old[2] = 0
	ans := new(dns.Msg)
	ans.SetQuestion("victim.test.", dns.TypeNS)
	answerKind := encode(kindAnswer, ans, now, time.Hour)
	big := append([]byte(magic+"\x01D"), make([]byte, MaxValueLen)...)
	// A delegation of the right zone whose glue names a host that is not
	// one of its name servers (glue out of the NS set).
	stray := exampleDelegation("victim.test.")
	stray.Addrs["www.bank.test."] = []netip.Addr{netip.MustParseAddr("198.51.100.6")}
	stray.NS = append(stray.NS, "www.bank.test.")
	strayB := encodeDelegation(stray, now, time.Hour)
	// Make it name www.bank.test. in the additional section only.
	m := new(dns.Msg)
	if err := m.Unpack(strayB[headerLen:]); err != nil {
		t.Fatal(err)
	}
	m.Ns = m.Ns[:len(m.Ns)-1]
	strayB = encode(kindDeleg, m, now, time.Hour)

	cases := []struct {
		name, reason string
		value        []byte
	}{
		{"another zone's delegation", RejectKey, other},
		{"garbage", RejectVersion, []byte("not a value at all")},
		{"old version", RejectVersion, old},
		{"an answer under a delegation key", RejectKey, answerKind},
		{"oversized", RejectSize, big},
		{"glue for a host that is no name server", RejectKey, strayB},
		{"truncated message", RejectMalformed, other[:headerLen+5]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Set(ctx, DelegationKey("victim.test."), tc.value, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			before := testutil.ToFloat64(s.m.rejected.WithLabelValues(tc.reason))
			if d, ok := s.Delegation("victim.test."); ok {
				t.Fatalf("planted value used: %+v", d)
			}
			if got := testutil.ToFloat64(s.m.rejected.WithLabelValues(tc.reason)) - before; got != 1 {
				t.Errorf("rejected{reason=%s} grew by %v, want 1", tc.reason, got)
			}
		})
	}
	// An answer for another name under a name's key.
	wrong := new(dns.Msg)
	wrong.SetQuestion("evil.test.", dns.TypeDS)
	if err := c.Set(ctx, AnswerKey("victim.test.", dns.TypeDS, false), encode(kindAnswer, wrong, now, time.Hour), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Answer("victim.test.", dns.TypeDS); ok {
		t.Error("an answer for evil.test. DS served for victim.test. DS")
	}
	// And the real value is used, so the cases above fail for their value.
	if err := c.Set(ctx, DelegationKey("victim.test."), encodeDelegation(exampleDelegation("victim.test."), now, time.Hour), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Delegation("victim.test."); !ok {
		t.Error("the good value was not used")
	}
	if n, err := testutil.GatherAndCount(reg, "shardns_recurse_shared_rejected_total"); err != nil || n == 0 {
		t.Errorf("rejected_total not registered: %d %v", n, err)
	}
}

// TestRedisDownIsAMiss: with Redis killed, reads are misses within the
// timeout and writes do not block.
func TestRedisDownIsAMiss(t *testing.T) {
	s, sv, srv, _ := open(t)
	l := NewLayered(recurse.NewMemCache(10), s)
	l.PutDelegation(exampleDelegation("up.test."), time.Hour)
	flush(t, s)
	srv.Kill()
	start := time.Now()
	if _, ok := l.Delegation("down.test."); ok {
		t.Error("hit with Redis down")
	}
	if _, ok := l.Delegation("up.test."); !ok {
		t.Error("the in-memory tier lost its entry")
	}
	for range 100 {
		l.PutAnswer("x.test.", dns.TypeA, new(dns.Msg), time.Minute)
		sv.Publish(netip.MustParseAddr("192.0.2.9"), recurse.ServerInfo{SRTT: time.Millisecond})
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v with Redis down", el)
	}
	if n := testutil.ToFloat64(s.m.reads.WithLabelValues("delegation", "error")); n < 1 {
		t.Errorf("errors counted: %v", n)
	}
}

// TestLayeredFillsFront: a Store hit is copied into the in-memory tier.
func TestLayeredFillsFront(t *testing.T) {
	s, _, _, _ := open(t)
	s.PutDelegation(exampleDelegation("fill.test."), time.Hour)
	flush(t, s)
	front := recurse.NewMemCache(10)
	l := NewLayered(front, s)
	if _, ok := l.Delegation("fill.test."); !ok {
		t.Fatal("miss")
	}
	if _, ok := front.Delegation("fill.test."); !ok {
		t.Error("the front was not filled")
	}
}

// TestServersShared: what one resolver publishes of a server, another
// reads (lazily: the first ask starts the read), and a planted hash for
// another address is refused.
func TestServersShared(t *testing.T) {
	_, a, srv, _ := open(t)
	addr := netip.MustParseAddr("192.0.2.53")
	until := time.Now().Add(10 * time.Minute).Truncate(time.Millisecond)
	a.Publish(addr, recurse.ServerInfo{SRTT: 7 * time.Millisecond, NoEDNS: true, Lame: []recurse.LameZone{{Zone: "lame.test.", Until: until}}})
	a.Flush()
	ring, err := cache.NewRing(cache.RedisConfig{Addrs: []string{srv.Addr}, MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	_, b, err := New(Config{Client: ring.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, ok := b.Server(addr); ok {
		t.Fatal("known before it was read")
	}
	var info recurse.ServerInfo
	deadline := time.Now().Add(5 * time.Second)
	for ok := false; !ok; info, ok = b.Server(addr) {
		if time.Now().After(deadline) {
			t.Fatal("never read")
		}
		time.Sleep(5 * time.Millisecond)
	}
	want := recurse.ServerInfo{SRTT: 7 * time.Millisecond, NoEDNS: true, Lame: []recurse.LameZone{{Zone: "lame.test.", Until: until}}}
	if !reflect.DeepEqual(info.SRTT, want.SRTT) || !info.NoEDNS || len(info.Lame) != 1 || info.Lame[0].Zone != "lame.test." || !info.Lame[0].Until.Equal(until) {
		t.Errorf("got %+v, want %+v", info, want)
	}
	c := srv.Client()
	defer c.Close()
	if ttl, err := c.TTL(context.Background(), ServerKey(addr)).Result(); err != nil || ttl <= 0 || ttl > ServerTTL {
		t.Errorf("server hash TTL %v %v", ttl, err)
	}
	// Planted: another address's hash under this one's key.
	other := netip.MustParseAddr("192.0.2.54")
	if err := c.HSet(context.Background(), ServerKey(other), encodeServer(addr, &want)).Err(); err != nil {
		t.Fatal(err)
	}
	b.Server(other)
	time.Sleep(300 * time.Millisecond)
	if _, ok := b.Server(other); ok {
		t.Error("a hash naming another address was used")
	}
	if n := testutil.ToFloat64(b.m.rejected.WithLabelValues(RejectKey)); n != 1 {
		t.Errorf("rejected{key} = %v", n)
	}
}

// FuzzDecode: no input crashes the decoders, and what decodes passes the
// key checks.
func FuzzDecode(f *testing.F) {
	now := time.Unix(1700000000, 0)
	f.Add(encodeDelegation(exampleDelegation("victim.test."), now, time.Hour))
	f.Add(encodeDelegation(exampleDelegation("evil.test."), now, time.Hour))
	f.Add([]byte("RS\x01A"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, _, _, err := decodeDelegation("victim.test.", b); err == nil && d.Zone != "victim.test." {
			t.Fatalf("zone %s", d.Zone)
		}
		if m, _, _, err := decodeAnswer("k", "victim.test.", dns.TypeDS, b); err == nil && m.Question[0].Qtype != dns.TypeDS {
			t.Fatal("type")
		}
		_, _ = decodeServer(netip.MustParseAddr("192.0.2.1"), map[string]string{"v": "1", "addr": "192.0.2.1", "rtt": string(b), "lame:" + string(b): string(b)}, now)
	})
}

// TestServerHashBounded: a server's hash drops lameness past its time on
// each write, and never grows past serverFields fields.
func TestServerHashBounded(t *testing.T) {
	_, s, srv, _ := open(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	addr := netip.MustParseAddr("192.0.2.77")
	now := time.Now()
	s.Publish(addr, recurse.ServerInfo{SRTT: time.Millisecond, Lame: []recurse.LameZone{{Zone: "old.test.", Until: now.Add(-time.Second)}, {Zone: "new.test.", Until: now.Add(time.Minute)}}})
	s.Flush()
	f, err := c.HGetAll(ctx, ServerKey(addr)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f["lame:old.test."]; ok {
		t.Errorf("lameness past its time kept: %v", f)
	}
	if _, ok := f["lame:new.test."]; !ok {
		t.Errorf("lameness lost: %v", f)
	}
	for round := range 2 {
		var lame []recurse.LameZone
		for i := range 200 {
			lame = append(lame, recurse.LameZone{Zone: fmt.Sprintf("z%d-%d.test.", round, i), Until: now.Add(time.Minute)})
		}
		s.Publish(addr, recurse.ServerInfo{SRTT: time.Millisecond, Lame: lame})
		s.Flush()
	}
	if n, err := c.HLen(ctx, ServerKey(addr)).Result(); err != nil || n > serverFields || n < 3 {
		t.Errorf("hash of %d fields (%v), bound %d", n, err, serverFields)
	}
}

// BenchmarkDelegation compares a delegation read from the in-memory tier
// alone, from Layered's front (no Redis call), and from the Store (one
// Redis round trip and a decode).
func BenchmarkDelegation(b *testing.B) {
	srv := redistest.Start(b)
	ring, err := cache.NewRing(cache.RedisConfig{Addrs: []string{srv.Addr}, Timeout: time.Second, MaxBatch: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer ring.Close()
	st, sv, err := New(Config{Client: ring.Client(), Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer sv.Close()
	defer st.Close()
	d := exampleDelegation("bench.test.")
	mem := recurse.NewMemCache(10)
	mem.PutDelegation(d, time.Hour)
	l := NewLayered(recurse.NewMemCache(10), st)
	l.PutDelegation(d, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := st.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		c    recurse.Cache
	}{{"memory", mem}, {"layered-front", l}, {"redis", st}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := c.c.Delegation("bench.test."); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}

// TestAnswersApartByDO: an answer fetched without DNSSEC OK (no
// signatures) is not served to an iterator that asks with it, nor the
// other way round.
func TestAnswersApartByDO(t *testing.T) {
	plain, _, srv, _ := open(t)
	ring, err := cache.NewRing(cache.RedisConfig{Addrs: []string{srv.Addr}, MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	signed, sv, err := New(Config{Client: ring.Client(), DNSSEC: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sv.Close()
	defer signed.Close()
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeDS)
	plain.PutAnswer("example.test.", dns.TypeDS, m, time.Hour)
	flush(t, plain)
	if _, ok := signed.Answer("example.test.", dns.TypeDS); ok {
		t.Error("an answer fetched without DO served to a DO iterator")
	}
	if _, ok := plain.Answer("example.test.", dns.TypeDS); !ok {
		t.Error("the answer is lost")
	}
	n := new(dns.Msg)
	n.SetQuestion("other.test.", dns.TypeDNSKEY)
	signed.PutAnswer("other.test.", dns.TypeDNSKEY, n, time.Hour)
	flush(t, signed)
	if _, ok := plain.Answer("other.test.", dns.TypeDNSKEY); ok {
		t.Error("an answer fetched with DO served to an iterator without")
	}
	if _, ok := signed.Answer("other.test.", dns.TypeDNSKEY); !ok {
		t.Error("the DO answer is lost")
	}
}

// TestAnswerChainChecked: an answer whose records lie on the CNAME and
// DNAME chain from its name is taken; one carrying a record for a name
// off the chain is refused.
func TestAnswerChainChecked(t *testing.T) {
	now := time.Now()
	msg := func(rrs ...string) []byte {
		m := new(dns.Msg)
		m.SetQuestion("www.a.test.", dns.TypeA)
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		return encode(kindAnswer, m, now, time.Hour)
	}
	good := msg("a.test. 60 IN DNAME b.test.", "www.a.test. 60 IN CNAME www.b.test.", "www.b.test. 60 IN CNAME host.c.test.",
		"host.c.test. 60 IN A 192.0.2.1",
		"host.c.test. 60 IN RRSIG A 13 3 60 20300101000000 20200101000000 1 c.test. AAAA")
	if _, _, _, err := decodeAnswer("k", "www.a.test.", dns.TypeA, good); err != nil {
		t.Errorf("a chained answer refused: %v", err)
	}
	bad := msg("www.a.test. 60 IN CNAME host.c.test.", "host.c.test. 60 IN A 192.0.2.1", "www.bank.test. 60 IN A 198.51.100.6")
	var re *RejectError
	if _, _, _, err := decodeAnswer("k", "www.a.test.", dns.TypeA, bad); !errors.As(err, &re) || re.Reason != RejectKey {
		t.Errorf("a record off the chain taken: %v", err)
	}
}

// TestSetDNSSECSwitchesKeys: an iterator that turns DO on (a reload that
// turns validation on) no longer reads the answers had without it, from
// the front or from Redis, and finds them again when it turns DO off.
func TestSetDNSSECSwitchesKeys(t *testing.T) {
	store, _, _, _ := open(t)
	l := NewLayered(recurse.NewMemCache(0), store)
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeDS)
	l.PutAnswer("example.test.", dns.TypeDS, m, time.Hour)
	flush(t, store)
	var c recurse.Cache = l
	aware, ok := c.(recurse.DNSSECAware)
	if !ok {
		t.Fatal("Layered is not DNSSECAware")
	}
	aware.SetDNSSEC(true)
	if _, ok := l.Answer("example.test.", dns.TypeDS); ok {
		t.Error("after SetDNSSEC(true), an answer had without DO is served")
	}
	aware.SetDNSSEC(false)
	if _, ok := l.Answer("example.test.", dns.TypeDS); !ok {
		t.Error("after SetDNSSEC(false), the answer had without DO is lost")
	}
}
