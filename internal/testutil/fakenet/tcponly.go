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

// tcpOnly is the server that only answers over TCP: every UDP query gets
// an empty answer with TC=1, every TCP query the answer of the nsd behind
// it (backend), relayed as is.
type tcpOnly struct {
	udp, tcp *dns.Server
	backend  string
	queries  atomic.Uint64 // queries received, UDP and TCP
}

// startTCPOnly serves on addr:53, UDP and TCP, relaying TCP queries to
// backend (host:port) over TCP.
func startTCPOnly(addr, backend string) (*tcpOnly, error) {
	hp := hostPort(addr)
	pc, err := net.ListenPacket("udp", hp)
	if err != nil {
		return nil, fmt.Errorf("fakenet: tcp-only server: %w", err)
	}
	l, err := net.Listen("tcp", hp)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("fakenet: tcp-only server: %w", err)
	}
	s := &tcpOnly{backend: backend}
	s.udp = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.truncate)}
	s.tcp = &dns.Server{Listener: l, Handler: dns.HandlerFunc(s.relay),
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	started := make(chan error, 2)
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		srv.NotifyStartedFunc = func() { started <- nil }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				started <- err
			}
		}()
	}
	for range 2 {
		if err := <-started; err != nil {
			s.stop()
			return nil, fmt.Errorf("fakenet: tcp-only server: %w", err)
		}
	}
	return s, nil
}

// truncate answers a UDP query with its question, no records and TC=1,
// echoing EDNS0 when the query had it.
func (s *tcpOnly) truncate(w dns.ResponseWriter, q *dns.Msg) {
	s.queries.Add(1)
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative = true
	r.Truncated = true
	if opt := q.IsEdns0(); opt != nil {
		r.SetEdns0(1232, opt.Do())
	}
	_ = w.WriteMsg(r)
}

// relay answers a TCP query with the backend's answer, or SERVFAIL when
// the backend does not answer within 2 s.
func (s *tcpOnly) relay(w dns.ResponseWriter, q *dns.Msg) {
	s.queries.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	r, _, err := c.ExchangeContext(ctx, q, s.backend)
	if err != nil {
		r = new(dns.Msg)
		r.SetRcode(q, dns.RcodeServerFailure)
	}
	r.Id = q.Id
	_ = w.WriteMsg(r)
}

// stop shuts both listeners down.
func (s *tcpOnly) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = errors.Join(s.udp.ShutdownContext(ctx), s.tcp.ShutdownContext(ctx))
}
