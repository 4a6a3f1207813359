package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/server"
)

// On a wildcard listener a client that asks 127.0.0.2 over UDP, on a
// connected socket (which takes replies from 127.0.0.2 alone), is
// answered, for a miss and for an L1 hit alike (replies that leave from
// different goroutines); over TCP too.
func TestWildcardListenerRepliesFromAddressAsked(t *testing.T) {
	auth := startAuth(t)
	srv := server.New(server.Config{Chain: newChain(options{}, newResolver(t, auth.addr, 0))})
	if err := srv.Listen([]string{"0.0.0.0:0"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	_, port, err := net.SplitHostPort(srv.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	for _, network := range networks {
		for _, ask := range []string{"127.0.0.2", "127.0.0.1"} {
			addr := net.JoinHostPort(ask, port)
			name := network + "-" + ask + ".example.com."
			for i, way := range []string{"miss", "hit"} {
				q := query(name, dns.TypeA, uint16(0x100+i))
				r := exchange(t, network, addr, q) // the Go client dials: a connected socket
				if r.Rcode != dns.RcodeSuccess || firstA(r) == "" {
					t.Errorf("%s %s asked on %s: rcode %s answer %v", network, way, addr, dns.RcodeToString[r.Rcode], r.Answer)
				}
			}
			if n := auth.Count(name, dns.TypeA); n != 1 {
				t.Errorf("upstream asked %d times for %s, want 1", n, name)
			}
		}
	}
}

// BenchmarkUDPL1HitListen is BenchmarkUDPL1Hit on a specific address,
// 0.0.0.0 and [::] (dnsd's default -listen binds the latter), asked on
// 127.0.0.1: a wildcard socket learns each query's destination address to
// send the reply from it.
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
			driveUDPHits(b, auth, net.JoinHostPort("127.0.0.1", port))
		})
	}
}
