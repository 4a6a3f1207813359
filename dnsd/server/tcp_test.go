package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/server"
)

func TestTCPConnectionCarriesManyQueries(t *testing.T) {
	s := newSetup(t, options{})
	co, err := dns.DialTimeout("tcp", s.tcp, clientTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	names := []string{"seq0.example.com.", "seq1.example.com.", "seq2.example.com.", "seq3.example.com.", "seq4.example.com."}
	const n = 5000
	for i := range n {
		_ = co.SetDeadline(time.Now().Add(clientTimeout))
		q := query(names[i%len(names)], dns.TypeA, uint16(i))
		if err := co.WriteMsg(q); err != nil {
			t.Fatalf("query %d: write: %v", i, err)
		}
		r, err := co.ReadMsg()
		if err != nil {
			t.Fatalf("query %d: read: %v", i, err)
		}
		if r.Id != q.Id || r.Rcode != dns.RcodeSuccess || r.Question[0].Name != q.Question[0].Name || firstA(r) == "" {
			t.Fatalf("query %d: reply ID %d rcode %s question %v", i, r.Id, dns.RcodeToString[r.Rcode], r.Question)
		}
	}
	for _, name := range names {
		if c := s.auth.Count(name, dns.TypeA); c != 1 {
			t.Errorf("upstream asked %d times for %s, want 1", c, name)
		}
	}
}

// RFC 7766 §6.2.1.1: a client may send many queries before reading.
func TestTCPPipelined(t *testing.T) {
	s := newSetup(t, options{})
	co, err := dns.DialTimeout("tcp", s.tcp, clientTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	_ = co.SetDeadline(time.Now().Add(30 * time.Second))
	const n, distinct = 100, 10
	want := map[uint16]string{}
	for i := range n {
		name := "pipe" + string(rune('0'+i%distinct)) + ".example.com."
		q := query(name, dns.TypeA, uint16(1000+i))
		want[q.Id] = name
		if err := co.WriteMsg(q); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	for i := range n {
		r, err := co.ReadMsg()
		if err != nil {
			t.Fatalf("read %d of %d: %v", i, n, err)
		}
		name, ok := want[r.Id]
		if !ok {
			t.Fatalf("reply with unknown or repeated ID %d", r.Id)
		}
		delete(want, r.Id)
		if r.Rcode != dns.RcodeSuccess || r.Question[0].Name != name || firstA(r) == "" {
			t.Errorf("ID %d: rcode %s question %v, want an answer for %s", r.Id, dns.RcodeToString[r.Rcode], r.Question, name)
		}
	}
	if len(want) != 0 {
		t.Errorf("%d queries not answered", len(want))
	}
	for i := range distinct {
		name := "pipe" + string(rune('0'+i)) + ".example.com."
		if c := s.auth.Count(name, dns.TypeA); c != 1 {
			t.Errorf("upstream asked %d times for %s, want 1", c, name)
		}
	}
}

// An idle TCP connection is closed by the server (RFC 7766 §6.2.3).
func TestTCPIdleTimeout(t *testing.T) {
	res := newResolver(t, startAuth(t).addr, 0)
	srv := server.New(server.Config{Chain: newChain(options{}, res), TCPIdleTimeout: 200 * time.Millisecond})
	if err := srv.Listen([]string{"127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	c, err := net.DialTimeout("tcp", srv.Addrs()[1].String(), clientTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err == nil {
		t.Fatal("read a byte from an idle connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("idle connection still open after 5s; idle timeout 200ms")
	}
}
