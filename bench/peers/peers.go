// Package peers starts the DNS servers a load run compares, each on a free
// loopback port and each a caching forwarder to the same loopback
// authoritative server: NSD (the authoritative server itself), Unbound,
// dnsmasq, CoreDNS, a fixed-answer miekg/dns server, Redis shards and shardns in
// its several arrangements.
package peers

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/bench/proc"
	"github.com/shardns/shardns/internal/testutil/freeport"
)

// startWait bounds how long a server has to answer its first query.
const startWait = 30 * time.Second

// Env is what every starter needs.
type Env struct {
	Group  *proc.Group
	Dir    string   // scratch directory for configuration files
	Prefix []string // command put before every server, e.g. taskset -c 1
}

// Server is a started DNS server under test, with the processes whose CPU
// time counts as its own.
type Server struct {
	Name    string
	Addr    string // 127.0.0.1:port, UDP and TCP
	Procs   []*proc.Proc
	Metrics string // URL of shardns's Prometheus metrics, or ""
	// ResolverdMetrics is the URL of its resolverd's metrics, or "".
	ResolverdMetrics string
	// RedisAddrs are its Redis cache shards, host:port.
	RedisAddrs []string
}

// CPU sums the CPU time used so far by the server's processes.
func (s *Server) CPU() (time.Duration, error) {
	var total time.Duration
	for _, p := range s.Procs {
		d, err := p.CPU()
		if err != nil {
			return 0, fmt.Errorf("peers: %s: %w", s.Name, err)
		}
		total += d
	}
	return total, nil
}

// Stop stops the server's processes, the last started first.
func (s *Server) Stop() {
	for i := len(s.Procs) - 1; i >= 0; i-- {
		s.Procs[i].Stop()
	}
}

// Alive returns an error naming the first of the server's processes that
// has exited.
func (s *Server) Alive() error {
	for _, p := range s.Procs {
		if done, err := p.Exited(); done {
			return fmt.Errorf("peers: %s: %s exited (%v): %s", s.Name, p.Name, err, p.LogTail(2000))
		}
	}
	return nil
}

func (e Env) start(name string, argv ...string) (*proc.Proc, error) {
	return e.Group.Start(name, append(append([]string(nil), e.Prefix...), argv...)...)
}

// FreePort returns a port on 127.0.0.1 free for both UDP and TCP at the
// time of the call.
func FreePort() (int, error) {
	p, err := freeport.UDPTCP()
	if err != nil {
		return 0, fmt.Errorf("peers: %w", err)
	}
	return p, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// WaitDNS queries addr for name until an answer with a response code other
// than SERVFAIL comes back, s's processes exit, or startWait passes.
func WaitDNS(ctx context.Context, s *Server, name string, qtype uint16) error {
	ctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	var last error
	for {
		if err := s.Alive(); err != nil {
			return err
		}
		r, _, err := c.ExchangeContext(ctx, q, s.Addr)
		if err == nil && r.Rcode != dns.RcodeServerFailure {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("peers: %s at %s did not answer %s within %v: %v", s.Name, s.Addr, name, startWait, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
