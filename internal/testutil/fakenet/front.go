package fakenet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// frontMode is how a front misbehaves.
type frontMode int

const (
	// tcpOnlyMode answers every UDP query with no records and TC=1, and
	// every TCP query with the backend's answer.
	tcpOnlyMode frontMode = iota + 1
	// noEDNSMode answers every query with an OPT record FORMERR, without
	// OPT (a server from before EDNS), and relays the others to the
	// backend over the transport they came by.
	noEDNSMode
	// blackholeMode reads every query and never answers.
	blackholeMode
)

// front is a Go DNS server on port 53 of an address, standing for a
// server nsd cannot play: it relays what it answers to the nsd behind it
// (backend) and counts the queries it receives.
type front struct {
	mode     frontMode
	udp, tcp *dns.Server
	backend  string        // host:port; empty for a blackhole
	queries  atomic.Uint64 // queries received, UDP and TCP
}

// startFront serves on addr:53, UDP and TCP.
func startFront(mode frontMode, addr, backend string) (*front, error) {
	hp := hostPort(addr)
	pc, err := net.ListenPacket("udp", hp)
	if err != nil {
		return nil, fmt.Errorf("fakenet: front on %s: %w", hp, err)
	}
	l, err := net.Listen("tcp", hp)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("fakenet: front on %s: %w", hp, err)
	}
	f := &front{mode: mode, backend: backend}
	f.udp = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(f.serveUDP)}
	f.tcp = &dns.Server{Listener: l, Handler: dns.HandlerFunc(f.serveTCP),
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	started := make(chan error, 2)
	for _, srv := range []*dns.Server{f.udp, f.tcp} {
		srv.NotifyStartedFunc = func() { started <- nil }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				started <- err
			}
		}()
	}
	for range 2 {
		if err := <-started; err != nil {
			f.stop()
			return nil, fmt.Errorf("fakenet: front on %s: %w", hp, err)
		}
	}
	return f, nil
}

func (f *front) serveUDP(w dns.ResponseWriter, q *dns.Msg) {
	f.queries.Add(1)
	switch f.mode {
	case tcpOnlyMode:
		r := new(dns.Msg)
		r.SetReply(q)
		r.Authoritative = true
		r.Truncated = true
		if opt := q.IsEdns0(); opt != nil {
			r.SetEdns0(1232, opt.Do())
		}
		_ = w.WriteMsg(r)
	case noEDNSMode:
		f.noEDNS(w, q, "udp")
	}
}

func (f *front) serveTCP(w dns.ResponseWriter, q *dns.Msg) {
	f.queries.Add(1)
	switch f.mode {
	case tcpOnlyMode:
		f.relay(w, q, "tcp")
	case noEDNSMode:
		f.noEDNS(w, q, "tcp")
	}
}

// noEDNS answers FORMERR to a query with OPT and relays the others.
func (f *front) noEDNS(w dns.ResponseWriter, q *dns.Msg, proto string) {
	if q.IsEdns0() != nil {
		r := new(dns.Msg)
		r.SetRcode(q, dns.RcodeFormatError)
		_ = w.WriteMsg(r)
		return
	}
	f.relay(w, q, proto)
}

// relay answers q with the backend's answer over proto, or SERVFAIL when
// the backend does not answer within 2 s.
func (f *front) relay(w dns.ResponseWriter, q *dns.Msg, proto string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
	r, _, err := c.ExchangeContext(ctx, q, f.backend)
	if err != nil {
		r = new(dns.Msg)
		r.SetRcode(q, dns.RcodeServerFailure)
	}
	r.Id = q.Id
	_ = w.WriteMsg(r)
}

// stop shuts both listeners down.
func (f *front) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = errors.Join(f.udp.ShutdownContext(ctx), f.tcp.ShutdownContext(ctx))
}
