package server_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/server"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// BenchmarkServeBatchRedisHit is a read of 16 datagrams, each a hit from a
// real Redis with L1 off, served as the transport serves it: the reader's
// call, then one wait call for all, which reads Redis once. The figure is
// per datagram.
func BenchmarkServeBatchRedisHit(b *testing.B) {
	const batch = 16
	rs := redistest.Start(b)
	tier, err := cache.NewRing(cache.RedisConfig{Addrs: []string{rs.Addr}, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tier.Close() })
	auth := startAuth(b)
	srv := server.New(server.Config{Chain: newChain(options{noL1: true, redis: tier}, newResolver(b, auth.addr, 0))})
	wires := make([][]byte, batch)
	for i := range wires {
		name := "b" + strconv.Itoa(i) + ".example.com."
		q := ednsQuery(name, dns.TypeA, uint16(i), 1232, false)
		serveOnce(b, srv, newRecorder(true), q) // the miss; its write follows the answer
		waitStored(b, rs, "dns:{"+name+"}:A:IN")
		wires[i] = pack(b, q)
	}
	ms := make([]transport.Msg, batch)
	dsts := make([][]byte, batch)
	for i := range dsts {
		dsts[i] = make([]byte, 0, 512)
	}
	from := transport.Peer{Addr: loopbackClient}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N / batch {
		for i := range ms {
			ms[i] = transport.Msg{Req: wires[i], From: from, Dst: dsts[i]}
		}
		srv.Serve(b.Context(), ms, false)
		srv.Serve(b.Context(), ms, true)
		for i := range ms {
			if !ms[i].Done || len(ms[i].Reply) < 12 || ms[i].Reply[3]&0x0F != dns.RcodeSuccess {
				b.Fatalf("datagram %d: done %v, reply %x", i, ms[i].Done, ms[i].Reply)
			}
		}
	}
}

// BenchmarkUDPMiss is a miss over real UDP on loopback, a fresh name every
// query from parallel clients, answered through the in-process resolver
// that forwards to the test's authoritative server: the hops a miss takes
// between the socket and the resolver, and back.
func BenchmarkUDPMiss(b *testing.B) {
	auth := startAuth(b)
	_, udp, _ := startServer(b, newChain(options{}, newResolver(b, auth.addr, 0)), 0)
	var n atomic.Uint32
	before := auth.Total()
	askParallel(b, udp, func(id uint32) *dns.Msg {
		n.Add(1)
		return query("u"+strconv.Itoa(int(id))+".example.com.", dns.TypeA, uint16(id))
	})
	if asked := auth.Total() - before; asked != int(n.Load()) {
		b.Fatalf("upstream asked %d times for %d fresh names", asked, n.Load())
	}
}
