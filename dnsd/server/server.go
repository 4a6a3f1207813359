// Package server is dnsd's query handling: it takes DNS messages as bytes,
// a batch at a time (see transport.Handler), decides whether and how to
// answer each (ACL, rate limit, cookies, the RFCs' rules for odd
// queries), reads the cache for the batch at once, looks the misses up
// under the query's deadline and fits each reply to its client.
// dnsd/transport carries the bytes.
package server

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/dnsd/acl"
	"github.com/shardns/shardns/dnsd/cookie"
	"github.com/shardns/shardns/dnsd/ratelimit"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/dnstaplog"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/querylog"
)

// DefaultBudget is how long a query may take inside dnsd: under the 2 s a
// stub resolver usually waits before it retries, so a failure is answered
// (SERVFAIL, or stale) before the client gives up. It is also RFC 8767's
// suggested client response timer.
const DefaultBudget = 1800 * time.Millisecond

// Chain is the lookup chain as the server asks it (lookup.Chain): a Peek
// of the cache for a batch of questions, then a lookup for each it missed.
type Chain interface {
	Peek(ctx context.Context, ps []lookup.Peeked, l1Only bool)
	LookupPeeked(ctx context.Context, p *lookup.Peeked, budget time.Duration) (*lookup.Result, error)
}

// Config is what New needs.
type Config struct {
	Chain  Chain         // required
	Budget time.Duration // per query; 0: DefaultBudget
	// ACL says who may query; nil allows everyone (dnsd always passes one).
	// UDP clients outside it are answered REFUSED; TCP connections from
	// them are closed as soon as they are accepted.
	ACL *acl.ACL
	// Limiter rate-limits UDP clients per prefix; nil: no limit.
	Limiter *ratelimit.Limiter
	// Cookies makes and checks DNS server cookies (RFC 7873, RFC 9018);
	// nil: COOKIE options are ignored, as by a server without cookies.
	Cookies    *cookie.Issuer
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Transport holds the listeners' bounds; its Handler, Logger and
	// Registerer are set by New.
	Transport transport.Config
	// TCPIdleTimeout overrides Transport.TCPIdleTimeout when set.
	TCPIdleTimeout time.Duration
	// Dnstap, when set, gets CLIENT_QUERY and CLIENT_RESPONSE for every
	// query answered (refusals and FORMERR included; silence is not
	// logged). Nil: no dnstap, at the cost of one check per reply.
	Dnstap *dnstaplog.Logger
	// QueryLog, when set, gets a JSON line for every query answered (or
	// one in its Sample). Nil: no query log.
	QueryLog *querylog.Logger
}

// Server answers DNS messages and, through Listen, serves them over UDP
// and TCP.
type Server struct {
	chain   Chain
	budget  time.Duration
	acl     *acl.ACL
	limiter *ratelimit.Limiter
	cookies *cookie.Issuer
	log     *slog.Logger
	metrics *metrics
	tr      *transport.Server
	dnstap  *dnstaplog.Logger
	qlog    *querylog.Logger
	logging bool      // dnstap or qlog is set
	states  sync.Pool // *msgState
	scratch sync.Pool // *peekScratch
}

// New returns a Server; call Listen to start it.
func New(cfg Config) *Server {
	s := &Server{chain: cfg.Chain, budget: cfg.Budget, acl: cfg.ACL, limiter: cfg.Limiter, cookies: cfg.Cookies, log: cfg.Logger,
		dnstap: cfg.Dnstap, qlog: cfg.QueryLog, logging: cfg.Dnstap != nil || cfg.QueryLog != nil}
	if s.budget <= 0 {
		s.budget = DefaultBudget
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.metrics = newMetrics(cfg.Registerer)
	s.states.New = func() any { return new(msgState) }
	s.scratch.New = func() any { return new(peekScratch) }
	tc := cfg.Transport
	tc.Handler, tc.Logger, tc.Registerer = s, s.log, cfg.Registerer
	if cfg.TCPIdleTimeout > 0 {
		tc.TCPIdleTimeout = cfg.TCPIdleTimeout
	}
	if cfg.ACL != nil {
		tc.TCPAllow = cfg.ACL // a TCP client outside it is closed at accept
	}
	s.tr = transport.New(tc)
	return s
}

// Listen binds UDP and TCP on every address and serves until Shutdown.
func (s *Server) Listen(addrs []string) error { return s.tr.Listen(addrs) }

// Addrs are the bound addresses, UDP then TCP for each -listen address.
func (s *Server) Addrs() []net.Addr { return s.tr.Addrs() }

// Shutdown stops the listeners and waits for queries in flight, up to ctx.
func (s *Server) Shutdown(ctx context.Context) error { return s.tr.Shutdown(ctx) }
