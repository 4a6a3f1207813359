// Package server is dnsd's DNS face: UDP and TCP listeners on miekg/dns that
// validate each query, give it a deadline, ask the lookup chain and fit the
// reply to the client.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
)

// DefaultBudget is how long a query may take inside dnsd: under the 2 s a
// stub resolver usually waits before it retries, so a failure is answered
// (SERVFAIL, or stale) before the client gives up.
const DefaultBudget = 1800 * time.Millisecond

// Config is what New needs.
type Config struct {
	Chain  lookup.Handler // required
	Budget time.Duration  // per query; 0: DefaultBudget
	Logger *slog.Logger
	// TCPIdleTimeout closes a TCP connection with no query for this long
	// (RFC 7766 §6.2.3); 0: 10s.
	TCPIdleTimeout time.Duration
}

// Server answers DNS over UDP and TCP.
type Server struct {
	chain  lookup.Handler
	budget time.Duration
	log    *slog.Logger
	idle   time.Duration

	mu      sync.Mutex
	servers []*dns.Server
	addrs   []net.Addr
	bufs    sync.Pool
}

var _ dns.Handler = (*Server)(nil)

// New returns a Server; call Listen to start it.
func New(cfg Config) *Server {
	s := &Server{chain: cfg.Chain, budget: cfg.Budget, log: cfg.Logger, idle: cfg.TCPIdleTimeout}
	if s.budget <= 0 {
		s.budget = DefaultBudget
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.idle <= 0 {
		s.idle = 10 * time.Second
	}
	s.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	return s
}

// Listen binds UDP and TCP on every address (host:port; port 0 picks one,
// the same for both) and serves until Shutdown. It returns once all
// sockets are bound.
func (s *Server) Listen(addrs []string) error {
	for _, addr := range addrs {
		pc, ln, err := listenPair(addr)
		if err != nil {
			s.Shutdown(context.Background())
			return err
		}
		// UDPSize is the read buffer: miekg/dns's default of 512 bytes
		// cuts a larger EDNS query (padding, cookies) into a FORMERR.
		s.start(&dns.Server{PacketConn: pc, Handler: s, UDPSize: dns.MaxMsgSize}, pc.LocalAddr())
		s.start(&dns.Server{
			Listener:      ln,
			Handler:       s,
			MaxTCPQueries: -1, // no cut-off: a connection may carry any number of queries
			IdleTimeout:   func() time.Duration { return s.idle },
			ReadTimeout:   s.idle,
			WriteTimeout:  5 * time.Second,
		}, ln.Addr())
	}
	return nil
}

// pairAttempts bounds how many UDP ports listenPair tries for port 0.
const pairAttempts = 20

// listenPair binds UDP on addr, then TCP on the port UDP got, so ":0" gives
// one port for both. With port 0 the number the kernel picked for UDP may
// already be taken for TCP; another one is tried then.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	attempts := 1
	if _, port, err := net.SplitHostPort(addr); err == nil && (port == "0" || port == "") {
		attempts = pairAttempts
	}
	var err error
	for range attempts {
		pc, uerr := net.ListenPacket("udp", addr)
		if uerr != nil {
			return nil, nil, fmt.Errorf("server: listen udp %s: %w", addr, uerr)
		}
		ln, terr := net.Listen("tcp", pc.LocalAddr().String())
		if terr == nil {
			return pc, ln, nil
		}
		pc.Close()
		err = fmt.Errorf("server: listen tcp %s: %w", addr, terr)
	}
	return nil, nil, err
}

func (s *Server) start(srv *dns.Server, addr net.Addr) {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.addrs = append(s.addrs, addr)
	s.mu.Unlock()
	go func() {
		if err := srv.ActivateAndServe(); err != nil {
			s.log.Error("dns server stopped", "addr", addr, "err", err)
		}
	}()
	<-started
	s.log.Info("serving DNS", "net", addr.Network(), "addr", addr.String())
}

// Addrs are the bound addresses, UDP and TCP alternating.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

// Shutdown stops every listener and waits for queries in flight, up to ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		errs = append(errs, srv.ShutdownContext(ctx))
	}
	return errors.Join(errs...)
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	q, rej := dnsmsg.ParseQuery(r)
	if rej != nil {
		s.writeMsg(w, dnsmsg.ErrorReply(r, rej.Rcode, rej.EDE, rej.Text))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.budget)
	defer cancel()
	res, err := s.chain.Lookup(ctx, &q)
	if err != nil {
		code, text := uint16(dns.ExtendedErrorCodeNoReachableAuthority), "resolver unreachable"
		if errors.Is(err, lookup.ErrTimeout) {
			code, text = dns.ExtendedErrorCodeNetworkError, "resolver did not answer in time"
		}
		s.log.Debug("lookup failed", "key", q.Key, "err", err)
		s.writeMsg(w, dnsmsg.ErrorReply(r, dns.RcodeServerFailure, code, text))
		return
	}
	bp := s.bufs.Get().(*[]byte)
	reply := dnsmsg.AppendReply((*bp)[:0], res.Stored(), &q, dnsmsg.ReplyOptions{Age: res.Age(), Stale: res.Stale()})
	if isUDP(w) {
		reply = dnsmsg.Fit(reply, q.ReplySize())
	}
	if _, err := w.Write(reply); err != nil {
		s.log.Debug("write reply", "err", err)
	}
	if cap(reply) <= 64<<10 {
		*bp = reply[:0]
	}
	s.bufs.Put(bp)
}

func (s *Server) writeMsg(w dns.ResponseWriter, m *dns.Msg) {
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("write reply", "err", err)
	}
}

func isUDP(w dns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.UDPAddr)
	return ok
}
