package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/server"
)

func TestAddrsOnePortForUDPAndTCP(t *testing.T) {
	s := newSetup(t, options{})
	addrs := s.srv.Addrs()
	u, ok := addrs[0].(*net.UDPAddr)
	if !ok {
		t.Fatalf("Addrs()[0] = %T, want *net.UDPAddr", addrs[0])
	}
	tc, ok := addrs[1].(*net.TCPAddr)
	if !ok {
		t.Fatalf("Addrs()[1] = %T, want *net.TCPAddr", addrs[1])
	}
	if u.Port == 0 || u.Port != tc.Port || !u.IP.IsLoopback() {
		t.Errorf("UDP %v and TCP %v: want one loopback port, not 0", u, tc)
	}
}

func TestShutdown(t *testing.T) {
	res := newResolver(t, startAuth(t).addr, 0)
	srv := server.New(server.Config{Chain: newChain(options{}, res)})
	if err := srv.Listen([]string{"127.0.0.1:0", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	addrs := srv.Addrs()
	if len(addrs) != 4 {
		t.Fatalf("two listen addresses gave %d bound addresses, want 4", len(addrs))
	}
	// An open idle TCP connection must not hold Shutdown up.
	idle, err := net.DialTimeout("tcp", addrs[1].String(), clientTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	exchange(t, "udp", addrs[2].String(), query("sd.example.com.", dns.TypeA, 1))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addrs[1].String(), time.Second); err == nil {
		c.Close()
		t.Error("TCP still accepts after Shutdown")
	}
	if b := rawUDP(t, addrs[0].String(), pack(t, query("sd.example.com.", dns.TypeA, 2)), 300*time.Millisecond); b != nil {
		t.Error("UDP still answers after Shutdown")
	}
}

func TestListenError(t *testing.T) {
	res := newResolver(t, startAuth(t).addr, 0)
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	srv := server.New(server.Config{Chain: newChain(options{}, res)})
	// The first address binds, the second is taken: Listen fails and
	// releases the first.
	err = srv.Listen([]string{"127.0.0.1:0", taken.LocalAddr().String()})
	if err == nil {
		_ = srv.Shutdown(context.Background())
		t.Fatal("Listen on a taken port succeeded")
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after a failed Listen: %v", err)
	}
}

// Port 0 gives one port for UDP and TCP even when the number the kernel
// picked for UDP is already taken for TCP (Listen then tries another).
func TestListenPortZeroRepeatedly(t *testing.T) {
	res := newResolver(t, startAuth(t).addr, 0)
	chain := newChain(options{}, res)
	for i := range 300 {
		srv := server.New(server.Config{Chain: chain})
		if err := srv.Listen([]string{"127.0.0.1:0"}); err != nil {
			t.Fatalf("Listen %d: %v", i, err)
		}
		a := srv.Addrs()
		if a[0].(*net.UDPAddr).Port != a[1].(*net.TCPAddr).Port {
			t.Errorf("UDP %v and TCP %v differ", a[0], a[1])
		}
		// Hold a TCP connection from an ephemeral port, as other tests and
		// processes on the host do, so that ports get taken meanwhile.
		c, err := net.DialTimeout("tcp", a[1].String(), clientTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown %d: %v", i, err)
		}
	}
}
