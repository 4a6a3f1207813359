// Package forward sends DNS queries to upstream servers over UDP, TCP or DNS
// over TLS (RFC 7858), with failover between upstreams and a background
// health check.
//
// Only the reply to the query just sent is an answer. Each UDP query has a
// socket of its own, opened and connected when it is sent (a random source
// port from the kernel), a random ID, its name in random case (0x20) while
// the upstream keeps case, and a client DNS cookie (RFC 7873). A datagram
// that does not match in ID, opcode, question (byte for byte) and cookie
// is counted and ignored; the read goes on until the attempt's deadline,
// so forged datagrams neither answer nor fail a query. AD is cleared in
// answers from upstreams that are not trusted.
//
// A Router forwards per zone: each group of upstreams (a Route, written
// as ParseRoutes reads it) is a Forwarder of its own, and a query goes to
// the group of the longest zone its name lies in, "." being the default.
package forward

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Defaults for Config.
const (
	DefaultTimeout        = 1500 * time.Millisecond
	DefaultHealthInterval = 5 * time.Second
)

// Config configures a Forwarder.
type Config struct {
	// Upstreams lists the servers: "host:port" or "udp://host:port" (UDP,
	// retried over TCP when the answer is truncated), "tcp://host:port"
	// (TCP only) or "tls://host:port#servername" (DNS over TLS). A missing
	// port means 53 (853 for tls). Hosts are IP addresses, IPv6 in brackets.
	Upstreams []string
	// Timeout bounds each attempt at one upstream (default 1500ms). The
	// context given to Exchange bounds the whole call.
	Timeout time.Duration
	// HealthInterval is the period of the health probes (default 5s; 0 keeps
	// the default, a negative value disables the health check).
	HealthInterval time.Duration
	// TLSConfig is used for tls:// upstreams (cloned; ServerName is set per
	// upstream). Nil means the system roots.
	TLSConfig *tls.Config
	// Trusted lists upstreams, written as in Upstreams and each one of
	// them, whose AD bit is passed on to the caller. tls:// upstreams are
	// always trusted (the channel is authenticated); from any other, AD is
	// cleared, as anyone on the path could have set it.
	Trusted []string
	// Logger receives health changes; nil discards them.
	Logger *slog.Logger
	// Group names the zone this forwarder serves (a Route's Zone), the
	// group label of its metrics and logs; "" means ".", the default.
	Group string
	// Tap, when set, is told of every query sent to an upstream (health
	// probes included) and of the reply taken for it, as they went on
	// the wire (dnstap's RESOLVER_QUERY and RESOLVER_RESPONSE).
	Tap Tap
}

// Tap is told of each query sent to an upstream: proto is "udp", "tcp" or
// "tls", upstream the server's address, query the message as sent, resp
// the reply as received (nil when none was taken: a timeout, a failed
// read). The slices are valid only during the call. It must not block.
type Tap interface {
	Exchanged(proto string, upstream netip.AddrPort, sent, received time.Time, query, resp []byte)
}

// Forwarder sends queries to a fixed set of upstreams. It is safe for
// concurrent use. Close stops its health checker.
type Forwarder struct {
	ups            []*upstream
	group          string
	timeout        time.Duration
	healthInterval time.Duration
	log            *slog.Logger
	tap            Tap       // nil: none
	bufs           sync.Pool // *[]byte of maxUDPRead bytes
	queries        sync.Pool // *outQuery
	rnd            *random

	stop      context.CancelFunc
	stopCtx   context.Context
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New parses cfg and starts the health checker (unless disabled).
func New(cfg Config) (*Forwarder, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("forward: no upstreams")
	}
	f := &Forwarder{
		group:          cfg.Group,
		timeout:        cfg.Timeout,
		healthInterval: cfg.HealthInterval,
		log:            cfg.Logger,
		tap:            cfg.Tap,
		rnd:            newRandom(),
	}
	if f.timeout <= 0 {
		f.timeout = DefaultTimeout
	}
	if f.healthInterval == 0 {
		f.healthInterval = DefaultHealthInterval
	}
	if f.group == "" {
		f.group = "."
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.log = f.log.With("group", f.group)
	f.bufs.New = func() any { b := make([]byte, maxUDPRead); return &b }
	f.queries.New = func() any { return new(outQuery) }
	seen := make(map[string]bool, len(cfg.Upstreams))
	for _, s := range cfg.Upstreams {
		u, err := parseUpstream(s)
		if err != nil {
			return nil, err
		}
		if seen[u.canon] {
			return nil, fmt.Errorf("forward: upstream %q listed twice", s)
		}
		seen[u.canon] = true
		if u.proto == protoTLS {
			u.tlsConfig = clientTLS(cfg.TLSConfig, u.serverName)
			u.trusted = true
		}
		u.case0x20.Store(u.proto == protoUDP)
		u.initCookie()
		f.ups = append(f.ups, u)
	}
	for _, s := range cfg.Trusted {
		t, err := parseUpstream(s)
		if err != nil {
			return nil, fmt.Errorf("%w (in the trusted list)", err)
		}
		i := slices.IndexFunc(f.ups, func(u *upstream) bool { return u.canon == t.canon })
		if i < 0 {
			return nil, fmt.Errorf("forward: trusted upstream %q (%s) is not one of the upstreams", s, t.canon)
		}
		f.ups[i].trusted = true
	}
	f.stopCtx, f.stop = context.WithCancel(context.Background())
	if f.healthInterval > 0 {
		f.wg.Add(1)
		go f.healthLoop()
	}
	return f, nil
}

// clientTLS returns a copy of base (or a new config) for one upstream.
func clientTLS(base *tls.Config, serverName string) *tls.Config {
	var c *tls.Config
	if base != nil {
		c = base.Clone()
	} else {
		c = &tls.Config{}
	}
	c.ServerName = serverName
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	if c.ClientSessionCache == nil {
		// Resumption makes the per-query handshake cheaper.
		c.ClientSessionCache = tls.NewLRUClientSessionCache(16)
	}
	return c
}

// Close stops the health checker and waits for it. It is safe to call more
// than once; Exchange keeps working after Close, without health probes.
func (f *Forwarder) Close() error {
	f.closeOnce.Do(func() {
		f.stop()
		f.wg.Wait()
	})
	return nil
}

// Group returns the zone whose names this forwarder serves ("." for the
// default group).
func (f *Forwarder) Group() string { return f.group }

// Upstreams returns a snapshot of every upstream's state, in configured order.
func (f *Forwarder) Upstreams() []UpstreamStatus {
	out := make([]UpstreamStatus, len(f.ups))
	for i, u := range f.ups {
		out[i] = u.status()
	}
	return out
}

// Exchange sends q to the upstreams, healthy ones first in order of smoothed
// RTT, then unhealthy ones as a last resort, and returns the first answer
// that is not SERVFAIL or REFUSED, with the canonical string of the upstream
// that gave it. If every upstream answered SERVFAIL or REFUSED, the last such
// answer is returned (it is an answer, not an error). An error means no
// upstream answered within ctx. The answer carries q's ID and question,
// owner names spelt as in q's question, and AD only from a trusted
// upstream; q is not modified.
func (f *Forwarder) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, string, error) {
	a, err := f.ExchangeWire(ctx, q)
	return a.Msg, a.Source, err
}

// Answer is an upstream's answer to a query.
type Answer struct {
	Msg    *dns.Msg
	Source string // the canonical string of the upstream that gave it
	// Wire, when not nil, is Msg's question and records packed, as the
	// upstream sent them: when they may be passed on as they are
	// (dnsmsg.CheckVerbatim) and shaping the reply changed only its
	// header. Its header is not Msg's: whoever passes Wire on writes
	// Msg's header over it (dnsmsg.PutHeader).
	Wire []byte
}

// ExchangeWire is Exchange, with the answer's wire form when the
// upstream's own bytes can serve (see Answer.Wire).
func (f *Forwarder) ExchangeWire(ctx context.Context, q *dns.Msg) (Answer, error) {
	if q == nil || len(q.Question) != 1 {
		return Answer{}, errors.New("forward: query must have exactly one question")
	}
	var (
		errs []error
		last Answer
	)
	var buf [maxOrderOnStack]*upstream
	for _, u := range f.order(buf[:0]) {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		resp, raw, err := f.attempt(ctx, u, q)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.canon, err))
			continue
		}
		a := Answer{Msg: resp, Source: u.canon, Wire: raw}
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			last = a
			continue
		}
		return a, nil
	}
	if last.Msg != nil {
		return last, nil
	}
	return Answer{}, fmt.Errorf("forward: no upstream answered: %w", errors.Join(errs...))
}

// maxOrderOnStack is how many upstreams order sorts without allocating.
const maxOrderOnStack = 8

// order appends to out the upstreams to try: healthy ones by smoothed RTT,
// then unhealthy ones by smoothed RTT. Ties keep the configured order.
func (f *Forwarder) order(out []*upstream) []*upstream {
	type entry struct {
		u       *upstream
		healthy bool
		srtt    time.Duration
	}
	var buf [maxOrderOnStack]entry
	es := buf[:0]
	for _, u := range f.ups {
		u.mu.Lock()
		es = append(es, entry{u, u.healthy, u.srtt})
		u.mu.Unlock()
	}
	slices.SortStableFunc(es, func(a, b entry) int {
		if a.healthy != b.healthy {
			if a.healthy {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.srtt, b.srtt)
	})
	for _, e := range es {
		out = append(out, e.u)
	}
	return out
}

// attempt asks one upstream, bounded by ctx and f.timeout, and records
// the outcome in its health state. The timeout is a deadline handed down
// to the sockets rather than a context of its own: a UDP query then pays
// for no context, timer or cancellation hook beyond ctx's.
func (f *Forwarder) attempt(ctx context.Context, u *upstream, q *dns.Msg) (*dns.Msg, []byte, error) {
	start := time.Now()
	resp, raw, err := f.exchange(ctx, start.Add(f.timeout), u, q)
	// A failure caused by the caller's context ending is not the upstream's.
	f.record(u, err, time.Since(start), expired(ctx))
	return resp, raw, err
}

// expired reports whether ctx is done or its deadline has passed (a read
// that timed out at the deadline can return before ctx's timer fires).
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// record notes the outcome of one exchange with u. A failure costs a whole
// timeout in the RTT estimate, however fast it was (a refused connection
// must not look like a fast server). With ignoreFailure, failures are not
// recorded.
func (f *Forwarder) record(u *upstream, err error, rtt time.Duration, ignoreFailure bool) {
	switch {
	case err == nil:
		if u.success(rtt) {
			f.log.Info("forward: upstream healthy again", "upstream", u.canon)
		}
	case !ignoreFailure:
		if u.failure(f.timeout) {
			f.log.Warn("forward: upstream unhealthy", "upstream", u.canon, "err", err)
		}
	}
}
