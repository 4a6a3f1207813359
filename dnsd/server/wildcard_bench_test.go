package server_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/server"
)

// BenchmarkUDPL1HitListen is BenchmarkUDPL1Hit on a specific address, an
// IPv4 wildcard and a dual-stack wildcard (dnsd's default -listen binds
// one), asked on 127.0.0.1: a wildcard socket learns each query's
// destination address to send the reply from it.
func BenchmarkUDPL1HitListen(b *testing.B) {
	for _, l := range []struct{ name, listen string }{
		{"specific", "127.0.0.1:0"},
		{"wildcard", "0.0.0.0:0"},
		{"dualstack", "[::]:0"},
	} {
		b.Run(l.name, func(b *testing.B) {
			auth := startAuth(b)
			chain := newChain(options{}, newResolver(b, auth.addr, 0))
			srv := server.New(server.Config{Chain: chain})
			if err := srv.Listen([]string{l.listen}); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := srv.Shutdown(ctx); err != nil {
					b.Errorf("shutdown: %v", err)
				}
			})
			_, port, err := net.SplitHostPort(srv.Addrs()[0].String())
			if err != nil {
				b.Fatal(err)
			}
			udp := net.JoinHostPort("127.0.0.1", port)
			const name = "udp.example.com."
			exchange(b, "udp", udp, query(name, dns.TypeA, 1)) // fill the cache
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
				q := query(name, dns.TypeA, 0)
				for pb.Next() {
					q.Id = uint16(ids.Add(1))
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
			if n := auth.Count(name, dns.TypeA); n != 1 {
				b.Fatalf("upstream asked %d times, want 1", n)
			}
		})
	}
}
