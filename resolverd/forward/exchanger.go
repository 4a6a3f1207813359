package forward

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DefaultMaxServers bounds how many servers an Exchanger remembers (their
// cookies and 0x20 state) when ExchangerConfig.MaxServers is 0.
const DefaultMaxServers = 10000

// ExchangerConfig configures an Exchanger.
type ExchangerConfig struct {
	// Logger receives the servers found not to keep case; nil discards.
	Logger *slog.Logger
	// Tap, when set, is told of every query sent and the reply taken.
	Tap Tap
	// MaxServers bounds the servers remembered (0: DefaultMaxServers);
	// past it, one is forgotten for each new one.
	MaxServers int
}

// Exchanger sends one query at a time to a server the caller chooses, as
// an iterative resolver asks authoritative servers, with the Forwarder's
// defences: a socket of its own per UDP query (random source port), a
// random ID, 0x20 case while the server keeps case, a client cookie, a
// reply taken only when it matches the query, and TCP when the UDP answer
// is truncated. Choosing the server, retries and timeouts are the
// caller's. It is safe for concurrent use.
type Exchanger struct {
	f   *Forwarder // the exchange machinery; it has no upstreams of its own
	max int

	mu      sync.Mutex
	servers map[serverKey]*upstream
}

// serverKey is one server, with or without EDNS: the two are separate
// upstreams so that the OPT-less one never disturbs the other's cookie.
type serverKey struct {
	addr   netip.AddrPort
	noEDNS bool
}

// NewExchanger returns an Exchanger.
func NewExchanger(cfg ExchangerConfig) *Exchanger {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{group: "iterative", timeout: DefaultTimeout, log: log, tap: cfg.Tap, rnd: newRandom()}
	f.bufs.New = func() any { b := make([]byte, maxUDPRead); return &b }
	f.queries.New = func() any { return new(outQuery) }
	max := cfg.MaxServers
	if max <= 0 {
		max = DefaultMaxServers
	}
	return &Exchanger{f: f, max: max, servers: make(map[serverKey]*upstream)}
}

// Exchange sends q to server over UDP (TCP when the answer is truncated)
// and returns the reply: q's ID and question, owner names spelt as in q,
// AD cleared. With edns, the query carries an OPT record of 1232 octets
// (and q's DO bit); without, none, for a server that answered FORMERR or
// NOTIMP to EDNS. The exchange ends at timeout or with ctx.
func (e *Exchanger) Exchange(ctx context.Context, server netip.AddrPort, q *dns.Msg, edns bool, timeout time.Duration) (*dns.Msg, error) {
	if q == nil || len(q.Question) != 1 {
		return nil, errors.New("forward: query must have exactly one question")
	}
	if !server.IsValid() || server.Addr().IsUnspecified() || server.Addr().IsMulticast() {
		return nil, errors.New("forward: bad server address " + server.String())
	}
	u := e.server(serverKey{netip.AddrPortFrom(server.Addr().Unmap(), server.Port()), !edns})
	m, _, err := e.f.exchange(ctx, time.Now().Add(timeout), u, q)
	return m, err
}

// server returns the upstream for k, made on first use.
func (e *Exchanger) server(k serverKey) *upstream {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u, ok := e.servers[k]; ok {
		return u
	}
	if len(e.servers) >= e.max {
		for old := range e.servers { // any one: the map's order is random
			delete(e.servers, old)
			break
		}
	}
	u := &upstream{
		proto: protoUDP, addr: k.addr.String(), udpAddrPort: k.addr,
		canon: protoUDP + "://" + k.addr.String(), healthy: true, noEDNS: k.noEDNS,
	}
	u.case0x20.Store(true)
	u.initCookie()
	e.servers[k] = u
	return u
}
