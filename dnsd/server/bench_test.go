package server_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"

	"github.com/shardns/shardns/dnsd/cookie"
	"github.com/shardns/shardns/dnsd/server"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/rawconn"
	"github.com/shardns/shardns/internal/resolverclient"
	"github.com/shardns/shardns/internal/testutil/redistest"
	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/resolve"
	"github.com/shardns/shardns/resolverd/rpc"
)

// The handler-level benchmarks call ServeMessage (export_test.go: Serve as
// the transport calls it for a datagram read alone) with a recorder, so
// the figures are the server's and the chain's own work per query, without
// socket I/O, and allocations per query are exact.

// serveOnce answers q through srv and checks the reply's ID and rcode.
func serveOnce(b *testing.B, srv *server.Server, w *recorder, q *dns.Msg) {
	b.Helper()
	w.serve(srv, q)
	r := unpack(b, w.buf)
	if r.Id != q.Id || r.Rcode != dns.RcodeSuccess || firstA(r) == "" {
		b.Fatalf("reply ID %d rcode %s answer %v", r.Id, dns.RcodeToString[r.Rcode], r.Answer)
	}
}

// benchHits answers q b.N times; every answer must come from the cache.
func benchHits(b *testing.B, srv *server.Server, auth *authServer, q *dns.Msg) {
	w := newRecorder(true)
	serveOnce(b, srv, w, q) // the miss that fills the cache, if it is not full yet
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w.serve(srv, q)
	}
	b.StopTimer()
	serveOnce(b, srv, w, q)
	if n := auth.Count(q.Question[0].Name, q.Question[0].Qtype); n != 1 {
		b.Fatalf("upstream asked %d times, want 1: not every query was a hit", n)
	}
}

// BenchmarkServeMessageL1Hit is a hit from the in-process cache.
func BenchmarkServeMessageL1Hit(b *testing.B) {
	auth := startAuth(b)
	chain := newChain(options{}, newResolver(b, auth.addr, 0))
	srv := server.New(server.Config{Chain: chain})
	benchHits(b, srv, auth, ednsQuery("l1.example.com.", dns.TypeA, 1, 1232, false))
}

// benchHitsWire is benchHits with q packed once, outside the loop, so the
// figure is the server's work alone.
func benchHitsWire(b *testing.B, srv *server.Server, auth *authServer, q *dns.Msg) {
	w := newRecorder(true)
	serveOnce(b, srv, w, q) // the miss that fills the cache, if it is not full yet
	wire := pack(b, q)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w.serveWire(srv, wire)
	}
	b.StopTimer()
	serveOnce(b, srv, w, q)
	if n := auth.Count(q.Question[0].Name, q.Question[0].Qtype); n != 1 {
		b.Fatalf("upstream asked %d times, want 1: not every query was a hit", n)
	}
}

// BenchmarkServeMessageL1HitWire is an L1 hit for a query as dig or
// dnsperf sends it, already packed: the common shape, answered without
// unpacking.
func BenchmarkServeMessageL1HitWire(b *testing.B) {
	auth := startAuth(b)
	chain := newChain(options{}, newResolver(b, auth.addr, 0))
	srv := server.New(server.Config{Chain: chain})
	benchHitsWire(b, srv, auth, ednsQuery("wire.example.com.", dns.TypeA, 1, 1232, false))
}

// BenchmarkServeMessageL1HitWireClientCookie is BenchmarkServeMessageL1HitWire
// with cookies on and a client cookie alone in the query, as dig sends its
// first: each reply carries a new server cookie (one SipHash-2-4).
func BenchmarkServeMessageL1HitWireClientCookie(b *testing.B) {
	auth := startAuth(b)
	chain := newChain(options{}, newResolver(b, auth.addr, 0))
	srv := server.New(server.Config{Chain: chain, Cookies: newTestIssuer(b, time.Now)})
	benchHitsWire(b, srv, auth, withCookie(ednsQuery("client.example.com.", dns.TypeA, 1, 1232, false), mustHex(b, clientCookie)))
}

// BenchmarkServeMessageL1HitWireValidCookie is the same hit with a valid
// server cookie: checked (one SipHash-2-4) and echoed.
func BenchmarkServeMessageL1HitWireValidCookie(b *testing.B) {
	auth := startAuth(b)
	chain := newChain(options{}, newResolver(b, auth.addr, 0))
	iss := newTestIssuer(b, time.Now)
	srv := server.New(server.Config{Chain: chain, Cookies: iss})
	valid := iss.AppendReply(nil, mustHex(b, clientCookie), cookie.ClientOnly, loopbackClient.Addr())
	benchHitsWire(b, srv, auth, withCookie(ednsQuery("valid.example.com.", dns.TypeA, 1, 1232, false), valid))
}

// BenchmarkServeMessageL1HitUnpacked is the same hit for a query carrying
// an NSID option, which the common shape leaves out: the general way, with
// the message unpacked, for comparison in the same run.
func BenchmarkServeMessageL1HitUnpacked(b *testing.B) {
	auth := startAuth(b)
	chain := newChain(options{}, newResolver(b, auth.addr, 0))
	srv := server.New(server.Config{Chain: chain})
	q := ednsQuery("unpacked.example.com.", dns.TypeA, 1, 1232, false)
	opt := q.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	benchHitsWire(b, srv, auth, q)
}

// BenchmarkServeMessageRedisHit is a hit from a real Redis with L1 off: one
// read round trip over loopback per query.
func BenchmarkServeMessageRedisHit(b *testing.B) {
	rs := redistest.Start(b)
	tier, err := cache.NewRing(cache.RedisConfig{Addrs: []string{rs.Addr}, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tier.Close() })
	auth := startAuth(b)
	chain := newChain(options{noL1: true, redis: tier}, newResolver(b, auth.addr, 0))
	srv := server.New(server.Config{Chain: chain})
	q := ednsQuery("redis.example.com.", dns.TypeA, 1, 1232, false)
	serveOnce(b, srv, newRecorder(true), q) // the miss; its write follows the answer
	waitStored(b, rs, "dns:{redis.example.com.}:A:IN")
	benchHits(b, srv, auth, q)
}

// startResolverd serves resolverd's gRPC service on 127.0.0.1:0, forwarding
// to upstream, and returns a client for it that has answered once.
func startResolverd(b *testing.B, upstream string) *resolverclient.Client {
	b.Helper()
	fwd, err := forward.New(forward.Config{Upstreams: []string{upstream}, HealthInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = fwd.Close() })
	res, err := resolve.New(nil, fwd)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ln = rawconn.Listener(ln) // as resolverd serves
	gs := grpc.NewServer(rpc.ServerOptions()...)
	rpc.New(res).Register(gs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()
	b.Cleanup(func() {
		gs.Stop()
		<-served
	})
	remote, err := resolverclient.Dial([]string{ln.Addr().String()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = remote.Close() })
	// Calls fail fast until the connection is ready: wait for one answer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		wire, err := query("ready.example.com.", dns.TypeA, 1).Pack()
		if err == nil {
			_, err = remote.Resolve(ctx, wire)
		}
		cancel()
		if err == nil {
			return remote
		}
		if time.Now().After(deadline) {
			b.Fatalf("resolverd not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkServeMessageMissResolverd is a miss answered by resolverd over
// gRPC, which forwards to the in-process authoritative server over UDP: a
// fresh name every query, stored in L1 afterwards as in production. The
// figures include what that server (miekg/dns) allocates per query.
func BenchmarkServeMessageMissResolverd(b *testing.B) {
	auth := startAuth(b)
	benchMissResolverd(b, auth.addr, auth.Total, server.Config{})
}

// BenchmarkServeMessageMissResolverdBareUpstream is the same miss with
// the upstream a bare UDP responder that allocates nothing per query
// (bareUpstream): the figures are shardns's own, dnsd's lookup, resolverd
// and both gRPC ends.
func BenchmarkServeMessageMissResolverdBareUpstream(b *testing.B) {
	up := startBareUpstream(b)
	benchMissResolverd(b, up.addr, func() int { return int(up.total.Load()) }, server.Config{})
}

// benchMissResolverd asks a resolverd forwarding to upstream for b.N fresh
// names through a chain, served by a server of cfg; total counts the
// queries upstream received.
func benchMissResolverd(b *testing.B, upstream string, total func() int, cfg server.Config) {
	remote := startResolverd(b, upstream)
	cfg.Chain = newChain(options{}, remote)
	srv := server.New(cfg)
	qs := make([]*dns.Msg, b.N)
	for i := range qs {
		qs[i] = ednsQuery("m"+strconv.Itoa(i)+".example.com.", dns.TypeA, uint16(i), 1232, false)
	}
	w := newRecorder(true)
	before := total()
	b.ReportAllocs()
	b.ResetTimer()
	for _, q := range qs {
		w.serve(srv, q)
	}
	b.StopTimer()
	if n := total() - before; n != b.N {
		b.Fatalf("upstream asked %d times for %d fresh names", n, b.N)
	}
	r := unpack(b, w.buf)
	if last := qs[len(qs)-1]; r.Id != last.Id || firstA(r) == "" {
		b.Fatalf("last reply ID %d answer %v", r.Id, r.Answer)
	}
}

// BenchmarkUDPL1Hit is an L1 hit over real UDP on loopback, with parallel
// clients each on its own socket: the figure a client sees, for context.
func BenchmarkUDPL1Hit(b *testing.B) {
	auth := startAuth(b)
	benchUDPHits(b, auth, newChain(options{}, newResolver(b, auth.addr, 0)))
}

// BenchmarkUDPL1HitWorker is BenchmarkUDPL1Hit with no hit answered by
// the reading goroutine: each query is answered from L1 by a wait call on
// an answering worker, for comparison in the same run.
func BenchmarkUDPL1HitWorker(b *testing.B) {
	auth := startAuth(b)
	chain := newChain(options{}, newResolver(b, auth.addr, 0))
	benchUDPHits(b, auth, noL1Peek{chain})
}

func benchUDPHits(b *testing.B, auth *authServer, chain server.Chain) {
	_, udp, _ := startServer(b, chain, 0)
	driveUDPHits(b, auth, udp)
}

// driveUDPHits fills the cache of the server on udp with one name, then
// asks for it from parallel clients: every query after the first a hit.
func driveUDPHits(b *testing.B, auth *authServer, udp string) {
	const name = "udp.example.com."
	exchange(b, "udp", udp, query(name, dns.TypeA, 1)) // fill the cache
	askParallel(b, udp, func(id uint32) *dns.Msg { return query(name, dns.TypeA, uint16(id)) })
	b.StopTimer()
	if n := auth.Count(name, dns.TypeA); n != 1 {
		b.Fatalf("upstream asked %d times, want 1", n)
	}
}

// bareUpstream answers every UDP query for an A record with 192.0.2.1
// (TTL ttlA) and an OPT record, built in the read buffer from the query's
// own header and question (ID, name in the case it came in), without
// allocating: the upstream of the miss benchmarks whose figures must be
// shardns's alone. It answers nothing else correctly and is for
// benchmarks only.
type bareUpstream struct {
	addr  string
	total atomic.Int64 // queries answered
}

// startBareUpstream serves a bareUpstream on 127.0.0.1 until the
// benchmark ends.
func startBareUpstream(b *testing.B) *bareUpstream {
	b.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	u := &bareUpstream{addr: c.LocalAddr().String()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed when the benchmark ends
			}
			if r := bareReply(buf, n); r > 0 {
				u.total.Add(1)
				_, _ = c.WriteToUDPAddrPort(buf[:r], from)
			}
		}
	}()
	b.Cleanup(func() {
		_ = c.Close()
		<-done
	})
	return u
}

// bareReply turns the query in buf[:n] into its answer in place and
// returns the answer's length, or 0 when the query is not one it can
// answer (no question, a name that runs past the datagram).
func bareReply(buf []byte, n int) int {
	if n < 12+5 || buf[2]&0x80 != 0 || buf[4] != 0 || buf[5] != 1 {
		return 0
	}
	end := 12
	for end < n && buf[end] != 0 {
		if buf[end]&0xC0 != 0 {
			return 0
		}
		end += 1 + int(buf[end])
	}
	end += 1 + 4 // the root label, QTYPE and QCLASS
	if end > n {
		return 0
	}
	const rrLen = 2 + 10 + 4 // a pointer to the question's name, then TYPE...RDATA
	const optLen = 11
	if end+rrLen+optLen > len(buf) {
		return 0
	}
	buf[2] = 0x80 | 0x04 | buf[2]&0x01 // QR, AA, RD as asked; opcode QUERY
	buf[3] = 0                         // NOERROR
	buf[6], buf[7] = 0, 1              // ANCOUNT
	buf[8], buf[9] = 0, 0              // NSCOUNT
	buf[10], buf[11] = 0, 1            // ARCOUNT: the OPT record
	rr := buf[end : end+rrLen]
	rr[0], rr[1] = 0xC0, 12
	rr[2], rr[3] = 0, byte(dns.TypeA)
	rr[4], rr[5] = 0, byte(dns.ClassINET)
	rr[6], rr[7], rr[8], rr[9] = 0, 0, byte(ttlA>>8), byte(ttlA&0xff)
	rr[10], rr[11] = 0, 4
	rr[12], rr[13], rr[14], rr[15] = 192, 0, 2, 1
	opt := buf[end+rrLen : end+rrLen+optLen]
	opt[0] = 0                                  // root owner
	opt[1], opt[2] = 0, byte(dns.TypeOPT)       // TYPE
	opt[3], opt[4] = 1232>>8, 1232&0xff         // UDP payload size
	opt[5], opt[6], opt[7], opt[8] = 0, 0, 0, 0 // extended RCODE, version, flags
	opt[9], opt[10] = 0, 0                      // RDLENGTH
	return end + rrLen + optLen
}

// askParallel resets the timer and sends, from parallel clients over UDP
// to udp, b.N queries made by next (its argument counts from 1), each
// waited for and checked to be answered NOERROR with its ID; then it stops
// the timer.
func askParallel(b *testing.B, udp string, next func(id uint32) *dns.Msg) {
	var ids atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		co, err := dns.DialTimeout("udp", udp, clientTimeout)
		if err != nil {
			b.Error(err)
			return
		}
		defer co.Close()
		for pb.Next() {
			q := next(ids.Add(1))
			_ = co.SetDeadline(time.Now().Add(clientTimeout))
			if err := co.WriteMsg(q); err != nil {
				b.Error(err)
				return
			}
			r, err := co.ReadMsg()
			if err != nil {
				b.Error(err)
				return
			}
			if r.Id != q.Id || r.Rcode != dns.RcodeSuccess {
				b.Errorf("reply ID %d rcode %d, query ID %d", r.Id, r.Rcode, q.Id)
				return
			}
		}
	})
	b.StopTimer()
}
