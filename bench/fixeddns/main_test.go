package main

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// serveFixed serves fixed(192.0.2.1, delay) over UDP on a loopback port
// until the test ends.
func serveFixed(t *testing.T, delay time.Duration) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: fixed(net.IPv4(192, 0, 2, 1).To4(), delay), NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	return pc.LocalAddr().String()
}

func TestFixedAnswers(t *testing.T) {
	addr := serveFixed(t, 0)
	c := &dns.Client{Timeout: 2 * time.Second}
	for _, c2 := range []struct {
		qtype   uint16
		answers int
	}{{dns.TypeA, 1}, {dns.TypeAAAA, 0}} {
		q := new(dns.Msg)
		q.SetQuestion("Any.Name.example.", c2.qtype)
		r, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatal(err)
		}
		if r.Id != q.Id || r.Rcode != dns.RcodeSuccess || len(r.Answer) != c2.answers || r.Question[0].Name != "Any.Name.example." {
			t.Errorf("%s: %v", dns.TypeToString[c2.qtype], r)
		}
		if c2.answers == 1 {
			if a, ok := r.Answer[0].(*dns.A); !ok || !a.A.Equal(net.IPv4(192, 0, 2, 1)) || a.Hdr.Ttl != 300 {
				t.Errorf("answer %v", r.Answer[0])
			}
		}
	}
	if err := run("192.0.2.1:53", 0, nil); err == nil {
		t.Error("a non-loopback -listen was accepted")
	}
	for _, d := range []time.Duration{-time.Millisecond, maxDelay + time.Millisecond} {
		if err := run("127.0.0.1:0", d, nil); err == nil {
			t.Errorf("-delay %v was accepted", d)
		}
	}
}

// TestDelayedAnswers: with a delay, no answer comes back sooner than it,
// and the answer is the same.
func TestDelayedAnswers(t *testing.T) {
	const delay = 30 * time.Millisecond
	addr := serveFixed(t, delay)
	c := &dns.Client{Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion("delayed.example.", dns.TypeA)
	start := time.Now()
	r, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < delay {
		t.Errorf("answered after %v, before the %v delay", el, delay)
	}
	if len(r.Answer) != 1 || r.Rcode != dns.RcodeSuccess {
		t.Errorf("delayed answer: %v", r)
	}
}
