// Package recurse resolves names iteratively, from the root: it primes
// the root hints (RFC 8109), follows referrals down to the zone that
// holds a name, and assembles CNAME and DNAME chains across zones into
// one answer. Replies are taken only as the authority of the zone asked:
// records outside its bailiwick are dropped, glue is taken only in it,
// and a server that answers without authority, REFUSED or SERVFAIL is
// avoided for a while (lame). Queries go to the server of lowest smoothed
// RTT, with timeouts and backoff, through forward's Exchanger (random
// port, ID and 0x20 case, TCP on truncation), with EDNS and a fallback
// to plain DNS for servers that reject it. Names are minimised (RFC 9156,
// relaxed: the full name is asked when a minimised query fails). Limits
// bound each resolution against loops and amplification, each counted
// when hit; a resolution that hits one is answered SERVFAIL.
//
// The iterator keeps what it learns in a Cache (delegations and answers);
// MemCache is the in-memory one. A validator plugs in through Lookup,
// which returns the zone cuts walked, and the DNSSEC option, which asks
// for signatures (DO).
package recurse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/resolverd/forward"
)

// Exchanger sends one query to one server (forward.Exchanger).
type Exchanger interface {
	Exchange(ctx context.Context, server netip.AddrPort, q *dns.Msg, edns bool, timeout time.Duration) (*dns.Msg, error)
}

// Limits bound one resolution. A zero field takes DefaultLimits' value.
type Limits struct {
	// Referrals is how many referrals one resolution follows (NS lookups
	// and CNAME targets included).
	Referrals int
	// NSLookups is how many name server names without an address are
	// resolved for one delegation (NXNS).
	NSLookups int
	// CNAMEs is how many CNAME and DNAME links one answer may have.
	CNAMEs int
	// Queries is how many queries one resolution may send.
	Queries int
	// Depth is how deep lookups of name server addresses may nest
	// (TsuNAME, glueless delegations that point at each other).
	Depth int
	// Budget is one resolution's time.
	Budget time.Duration
}

// DefaultLimits are the limits a zero Limits field takes.
var DefaultLimits = Limits{Referrals: 30, NSLookups: 6, CNAMEs: 12, Queries: 64, Depth: 4, Budget: 1500 * time.Millisecond}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	pick := func(v, def int) int {
		if v > 0 {
			return v
		}
		return def
	}
	l.Referrals = pick(l.Referrals, d.Referrals)
	l.NSLookups = pick(l.NSLookups, d.NSLookups)
	l.CNAMEs = pick(l.CNAMEs, d.CNAMEs)
	l.Queries = pick(l.Queries, d.Queries)
	l.Depth = pick(l.Depth, d.Depth)
	if l.Budget <= 0 {
		l.Budget = d.Budget
	}
	return l
}

// Config configures a Resolver.
type Config struct {
	// Hints are the root servers (nil: DefaultHints).
	Hints *Hints
	// Port is the port servers are asked on (0: 53).
	Port uint16
	// Exchanger sends the queries (nil: a forward.Exchanger with Logger
	// and Tap).
	Exchanger Exchanger
	// Tap is told of every query sent, when Exchanger is nil.
	Tap forward.Tap
	// Cache keeps delegations and answers (nil: a MemCache of
	// DefaultCacheEntries).
	Cache Cache
	// Limits bound each resolution.
	Limits Limits
	// NoQNAMEMinimisation sends the full name to every server.
	NoQNAMEMinimisation bool
	// DNSSEC sets DO on queries, so that answers carry their signatures
	// and proofs for a validator.
	DNSSEC bool
	// Servers shares server RTTs, EDNS support and lameness with other
	// resolvers (nil: each resolver keeps its own).
	Servers ServerShare
	// LameTTL is how long a lame server is avoided for its zone (0:
	// DefaultLameTTL).
	LameTTL time.Duration
	// Registerer gets shardns_recurse_limit_total; nil registers none.
	Registerer prometheus.Registerer
	// Logger gets the limits hit (debug); nil discards.
	Logger *slog.Logger
}

// Resolver resolves names iteratively. It is safe for concurrent use.
type Resolver struct {
	ex      Exchanger
	cache   Cache
	hints   atomic.Pointer[Hints]
	reprime atomic.Bool // the hints changed: prime again before using the root
	port    uint16
	limits  Limits
	qmin    bool
	dnssec  atomic.Bool
	srv     *servers
	hits    *prometheus.CounterVec
	log     *slog.Logger
	primeMu sync.Mutex
}

// New returns a Resolver.
func New(cfg Config) (*Resolver, error) {
	r := &Resolver{
		ex: cfg.Exchanger, cache: cfg.Cache, port: cfg.Port, limits: cfg.Limits.withDefaults(),
		qmin: !cfg.NoQNAMEMinimisation, log: cfg.Logger, hits: newLimitCounter(),
	}
	r.dnssec.Store(cfg.DNSSEC)
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.ex == nil {
		r.ex = forward.NewExchanger(forward.ExchangerConfig{Logger: r.log, Tap: cfg.Tap})
	}
	if r.cache == nil {
		r.cache = NewMemCache(0)
	}
	if r.port == 0 {
		r.port = 53
	}
	lame := cfg.LameTTL
	if lame <= 0 {
		lame = DefaultLameTTL
	}
	r.srv = newServers(lame)
	r.srv.share = cfg.Servers
	h := cfg.Hints
	if h == nil {
		h = DefaultHints()
	}
	if len(h.Servers) == 0 {
		return nil, errNoHints
	}
	r.hints.Store(h)
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(r.hits); err != nil {
			return nil, fmt.Errorf("recurse: register metrics: %w", err)
		}
	}
	return r, nil
}

// SetHints replaces the root hints; the root is primed again from them
// before its next use. What the cache holds below the root is kept.
func (r *Resolver) SetHints(h *Hints) error {
	if h == nil || len(h.Servers) == 0 {
		return errNoHints
	}
	r.hints.Store(h)
	r.reprime.Store(true)
	return nil
}

// SetDNSSEC turns the DO bit of the queries sent on or off (Config.DNSSEC),
// for a validator turned on or off while the resolver runs. When it
// changes, the cache is told (a DNSSECAware cache) or else its answers are
// forgotten (an AnswerFlusher): those had without DO lack the signatures a
// validator needs. Delegations are kept.
func (r *Resolver) SetDNSSEC(on bool) {
	if r.dnssec.Swap(on) == on {
		return
	}
	switch c := r.cache.(type) {
	case DNSSECAware:
		c.SetDNSSEC(on)
	case AnswerFlusher:
		c.FlushAnswers()
	}
}

// AnswerFlusher is a Cache that can forget its answers (MemCache).
type AnswerFlusher interface {
	FlushAnswers()
}

// DNSSECAware is a Cache that keeps answers had with and without the DO
// bit apart (the fleet's shared state): SetDNSSEC says which the
// iterator asks with from now on.
type DNSSECAware interface {
	SetDNSSEC(on bool)
}

// LimitHits returns shardns_recurse_limit_total: per limit (its label is
// one of the Limit constants), the resolutions that hit it.
func (r *Resolver) LimitHits() *prometheus.CounterVec { return r.hits }

// LimitError is the error of a resolution that hit a limit.
type LimitError struct {
	// Limit is the one hit (LimitReferrals...).
	Limit string
}

func (e *LimitError) Error() string { return "recurse: limit hit: " + e.Limit }

// ErrNoServer is wrapped by the errors of a resolution where no server
// of a zone gave a usable answer.
var ErrNoServer = errors.New("recurse: no server of the zone answered")

// Result is what Lookup found.
type Result struct {
	// Msg is the answer: the question as looked up (lower case), RCODE,
	// the answer section with the whole CNAME/DNAME chain, and for a
	// negative answer the authority with the SOA (RFC 2308).
	Msg *dns.Msg
	// Zones are the zone cuts the resolution learnt by referral, in the
	// order walked (the root first when it was primed); cuts taken from
	// the cache are not repeated. A validator fetches each cut's DS and
	// DNSKEY through Lookup.
	Zones []*Delegation
}

// Lookup resolves (name, qtype) from the root, within the resolver's
// budget and ctx. Errors are a *LimitError, ErrNoServer, or ctx's.
func (r *Resolver) Lookup(ctx context.Context, name string, qtype uint16) (*Result, error) {
	x := &run{r: r, deadline: time.Now().Add(r.limits.Budget)}
	if dl, ok := ctx.Deadline(); ok && dl.Before(x.deadline) {
		x.deadline = dl
	}
	m, err := x.lookup(ctx, strings.ToLower(dns.Fqdn(name)), qtype, 0)
	if err != nil {
		var le *LimitError
		if errors.As(err, &le) {
			r.hits.WithLabelValues(le.Limit).Inc()
			r.log.Debug("recurse: limit hit", "name", name, "type", dns.TypeToString[qtype], "limit", le.Limit, "queries", x.queries)
		}
		return nil, err
	}
	return &Result{Msg: m, Zones: x.zones}, nil
}

// Resolve answers q, a client's query, from the root: q's ID, question
// (as spelt) and RD, RA set, AA clear, and an OPT record when q has one.
// A resolution that fails or hits a limit is answered SERVFAIL, with an
// Extended DNS Error saying why (FailureEDE) when q has EDNS; the error is
// ctx's when it ended first.
func (r *Resolver) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if len(q.Question) != 1 {
		return nil, errors.New("recurse: query must have exactly one question")
	}
	qq := q.Question[0]
	out := new(dns.Msg)
	out.SetReply(q)
	out.RecursionAvailable = true
	res, err := r.Lookup(ctx, qq.Name, qq.Qtype)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("recurse: %w", ctx.Err())
	case err != nil:
		out.Rcode = dns.RcodeServerFailure
	default:
		out.Rcode = res.Msg.Rcode
		out.Answer, out.Ns = res.Msg.Answer, res.Msg.Ns
		for _, sec := range [][]dns.RR{out.Answer, out.Ns} {
			for _, rr := range sec {
				if h := rr.Header(); h.Name != qq.Name && strings.EqualFold(h.Name, qq.Name) {
					h.Name = qq.Name
				}
			}
		}
	}
	if opt := q.IsEdns0(); opt != nil {
		out.SetEdns0(1232, opt.Do())
		if err != nil {
			o := out.IsEdns0()
			o.Option = append(o.Option, FailureEDE(err))
		}
	}
	return out, nil
}

// FailureEDE is the Extended DNS Error (RFC 8914) of a resolution that
// failed with err: No Reachable Authority (22) when no server of a zone
// answered, else Other (0) saying which limit was hit or what failed, in
// at most MaxEDEText bytes.
func FailureEDE(err error) *dns.EDNS0_EDE {
	var le *LimitError
	switch {
	case errors.Is(err, ErrNoServer):
		return &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeNoReachableAuthority, ExtraText: EDEText(err.Error())}
	case errors.As(err, &le):
		return &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: "resolution limit hit: " + le.Limit}
	}
	return &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: EDEText(err.Error())}
}

// MaxEDEText bounds the text of an Extended DNS Error, so that a SERVFAIL
// stays small.
const MaxEDEText = 200

// EDEText is why, cut to MaxEDEText bytes.
func EDEText(why string) string {
	if len(why) > MaxEDEText {
		return why[:MaxEDEText]
	}
	return why
}

// run is one resolution's state: its counts against the limits.
type run struct {
	r         *Resolver
	deadline  time.Time
	queries   int
	referrals int
	zones     []*Delegation
}

func limit(l string) error { return &LimitError{Limit: l} }

// lookup resolves (name, qtype), following CNAME and DNAME across zones.
func (x *run) lookup(ctx context.Context, name string, qtype uint16, depth int) (*dns.Msg, error) {
	out := new(dns.Msg)
	out.SetQuestion(name, qtype)
	cur := name
	seen := map[string]bool{cur: true}
	links := 0
	for {
		m, err := x.iterate(ctx, cur, qtype, depth)
		if err != nil {
			return nil, err
		}
		out.Answer = append(out.Answer, m.Answer...)
		out.Rcode = m.Rcode
		next, n := chainTarget(m.Answer, cur, qtype)
		links += n
		if next == "" {
			out.Ns = m.Ns
			return out, nil
		}
		if links > x.r.limits.CNAMEs || seen[next] {
			return nil, limit(LimitCNAMEs)
		}
		seen[next] = true
		cur = next
		if x.referrals++; x.referrals > x.r.limits.Referrals {
			return nil, limit(LimitReferrals)
		}
	}
}

// chainTarget follows the CNAME and DNAME records of answer from name and
// returns the name where the chain leaves answer ("" when it ends in
// answer: at a record of qtype, or nowhere), and the links it followed.
func chainTarget(answer []dns.RR, name string, qtype uint16) (string, int) {
	if qtype == dns.TypeCNAME || qtype == dns.TypeANY {
		return "", 0
	}
	t, links := name, 0
	for range len(answer) + 1 {
		next := ""
		for _, rr := range answer {
			h := rr.Header()
			if h.Rrtype == qtype && strings.EqualFold(h.Name, t) {
				return "", links
			}
			switch v := rr.(type) {
			case *dns.CNAME:
				if next == "" && strings.EqualFold(h.Name, t) {
					next = strings.ToLower(v.Target)
				}
			case *dns.DNAME:
				if next == "" && qtype != dns.TypeDNAME && !strings.EqualFold(h.Name, t) && dns.IsSubDomain(h.Name, t) {
					prefix := t[:len(t)-len(h.Name)]
					if s := prefix + strings.ToLower(v.Target); len(s) <= 255 {
						next = s
					}
				}
			}
		}
		if next == "" {
			break
		}
		t, links = next, links+1
	}
	if links == 0 {
		return "", 0
	}
	return t, links
}

// kind is what a reply is, for the zone asked.
type kind int

const (
	kindAnswer   kind = iota // authoritative: data, NODATA or NXDOMAIN
	kindReferral             // a delegation to a zone below the one asked
	kindLame                 // neither: the server is no authority for the zone
)

// iterate resolves (name, qtype) to the authoritative reply for exactly
// name, following referrals from the closest delegation known.
func (x *run) iterate(ctx context.Context, name string, qtype uint16, depth int) (*dns.Msg, error) {
	if m, ok := x.r.cache.Answer(name, qtype); ok {
		return m, nil
	}
	cut := name
	if qtype == dns.TypeDS && name != "." {
		cut = parent(name) // the DS RRset lives in the parent zone
	}
	d, err := x.closest(ctx, cut, depth)
	if err != nil {
		return nil, err
	}
	minimise := x.r.qmin
	send := name
	if minimise {
		send = nextName(d.Zone, name)
	}
	for {
		stype := qtype
		if send != name {
			stype = dns.TypeA
		}
		if send != name {
			if m, ok := x.r.cache.Answer(send, stype); ok {
				send, minimise = x.stepPast(m, send, name, minimise)
				continue
			}
		}
		m, k, err := x.ask(ctx, d, send, stype, depth)
		if err != nil {
			var le *LimitError
			if send != name && !errors.As(err, &le) && ctx.Err() == nil {
				minimise, send = false, name // relaxed: the full name
				continue
			}
			return nil, err
		}
		if k == kindReferral {
			nd := x.delegationFrom(m, d)
			if x.referrals++; x.referrals > x.r.limits.Referrals {
				return nil, limit(LimitReferrals)
			}
			x.r.cache.PutDelegation(nd, ttlOf(nd.TTL))
			x.zones = append(x.zones, nd)
			d = nd
			send = name
			if minimise {
				send = nextName(d.Zone, name)
			}
			continue
		}
		if send != name {
			// Kept, so that the next names below send skip this step.
			x.store(send, stype, m)
			send, minimise = x.stepPast(m, send, name, minimise)
			continue
		}
		x.store(name, qtype, m)
		return m, nil
	}
}

// stepPast returns the next name to send on the way to name, and whether
// to go on minimising, given m, the authoritative answer for (send, A):
// one label more when send exists or is an empty non-terminal, else the
// full name.
func (x *run) stepPast(m *dns.Msg, send, name string, minimise bool) (string, bool) {
	if _, n := chainTarget(m.Answer, send, dns.TypeA); m.Rcode == dns.RcodeSuccess && n == 0 {
		return nextName(send, name), minimise
	}
	return name, false
}

// store keeps m, the answer for (name, qtype), for its TTL: the lowest of
// its answer's, or for a negative answer its SOA's (RFC 2308 §5).
func (x *run) store(name string, qtype uint16, m *dns.Msg) {
	var ttl uint32
	switch {
	case len(m.Answer) > 0:
		ttl = m.Answer[0].Header().Ttl
		for _, rr := range m.Answer {
			ttl = min(ttl, rr.Header().Ttl)
		}
	case m.Rcode == dns.RcodeSuccess || m.Rcode == dns.RcodeNameError:
		soa := soaOf(m)
		if soa == nil {
			return
		}
		ttl = soa.Hdr.Ttl
	default:
		return
	}
	x.r.cache.PutAnswer(name, qtype, m.Copy(), ttlOf(ttl))
}

// soaOf returns the SOA of m's authority section, its TTL lowered to its
// MINIMUM as RFC 2308 §5 says a negative answer lives.
func soaOf(m *dns.Msg) *dns.SOA {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
			return soa
		}
	}
	return nil
}

// maxTTL caps what the iterator keeps.
const maxTTL = 86400

func ttlOf(s uint32) time.Duration { return time.Duration(min(s, maxTTL)) * time.Second }

// closest returns the delegation of the closest zone at or above name
// that the cache holds, the primed root at the top.
func (x *run) closest(ctx context.Context, name string, depth int) (*Delegation, error) {
	for z := name; z != "."; z = parent(z) {
		if d, ok := x.r.cache.Delegation(z); ok {
			return d, nil
		}
	}
	return x.root(ctx, depth)
}

// rootPrimeTTL is how long a root taken from the hints, when priming
// failed, is used before priming is tried again.
const rootPrimeTTL = 5 * time.Second

// root returns the root's delegation, priming it from the hints when the
// cache has none (RFC 8109: ". NS" asked of the hints, the answer and its
// addresses used). When priming fails, the hints serve as the root.
func (x *run) root(ctx context.Context, depth int) (*Delegation, error) {
	if d, ok := x.r.cache.Delegation("."); ok && !x.r.reprime.Load() {
		return d, nil
	}
	x.r.primeMu.Lock()
	defer x.r.primeMu.Unlock()
	if d, ok := x.r.cache.Delegation("."); ok && !x.r.reprime.Load() {
		return d, nil
	}
	reprime := x.r.reprime.Swap(false)
	hints := x.r.hints.Load().delegation(0)
	m, k, err := x.ask(ctx, hints, ".", dns.TypeNS, depth)
	if err != nil || k != kindAnswer {
		var le *LimitError
		if errors.As(err, &le) || ctx.Err() != nil {
			if reprime {
				x.r.reprime.Store(true)
			}
			return nil, err
		}
		x.r.log.Warn("recurse: priming the root failed; using the hints", "err", err)
		x.r.cache.PutDelegation(hints, rootPrimeTTL)
		return hints, nil
	}
	d := &Delegation{Zone: ".", Addrs: map[string][]netip.Addr{}}
	for _, rr := range m.Answer {
		if ns, ok := rr.(*dns.NS); ok && ns.Hdr.Name == "." {
			d.NS = appendName(d.NS, ns.Ns)
			if d.TTL == 0 || ns.Hdr.Ttl < d.TTL {
				d.TTL = ns.Hdr.Ttl
			}
		}
	}
	addGlue(d, m.Extra, ".")
	if len(d.Addrs) == 0 {
		x.r.log.Warn("recurse: the root's priming answer gives no address; using the hints")
		x.r.cache.PutDelegation(hints, rootPrimeTTL)
		return hints, nil
	}
	x.r.cache.PutDelegation(d, ttlOf(d.TTL))
	x.zones = append(x.zones, d)
	return d, nil
}

// delegationFrom builds the delegation a referral from d's servers gives:
// the child's NS RRset and the glue for it within d's zone.
func (x *run) delegationFrom(m *dns.Msg, d *Delegation) *Delegation {
	nd := &Delegation{Addrs: map[string][]netip.Addr{}}
	for _, rr := range m.Ns {
		if ns, ok := rr.(*dns.NS); ok {
			owner := strings.ToLower(ns.Hdr.Name)
			if nd.Zone == "" {
				nd.Zone = owner
			}
			if owner != nd.Zone {
				continue
			}
			nd.NS = appendName(nd.NS, ns.Ns)
			if nd.TTL == 0 || ns.Hdr.Ttl < nd.TTL {
				nd.TTL = ns.Hdr.Ttl
			}
		}
	}
	addGlue(nd, m.Extra, d.Zone)
	return nd
}

// addGlue adds to d the addresses in extra of d's name servers that lie
// within bailiwick; the rest are not taken (they could poison).
func addGlue(d *Delegation, extra []dns.RR, bailiwick string) {
	for _, rr := range extra {
		owner := strings.ToLower(rr.Header().Name)
		if !dns.IsSubDomain(bailiwick, owner) || !contains(d.NS, owner) {
			continue
		}
		var ip []byte
		switch v := rr.(type) {
		case *dns.A:
			ip = v.A
		case *dns.AAAA:
			ip = v.AAAA
		default:
			continue
		}
		d.Addrs[owner] = appendAddr(d.Addrs[owner], ip)
	}
}

func appendName(list []string, n string) []string {
	n = strings.ToLower(n)
	if contains(list, n) {
		return list
	}
	return append(list, n)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// parent returns the name one label up ("." for a top-level name).
func parent(name string) string {
	if name == "." {
		return "."
	}
	if i := strings.IndexByte(name, '.'); i >= 0 && i+1 < len(name) {
		return name[i+1:]
	}
	return "."
}

// nextName returns name cut to one label more than zone (RFC 9156's next
// query name), or name itself when it is no longer.
func nextName(zone, name string) string {
	idx := dns.Split(name)
	want := dns.CountLabel(zone) + 1
	if want >= len(idx) {
		return name
	}
	return name[idx[len(idx)-want]:]
}

// maxAttempts bounds the servers one ask tries.
const maxAttempts = 8

// ask sends (qname, qtype) to d's servers, the best first, until one gives
// an answer or a referral for d's zone; its records outside the zone are
// dropped. Name servers without an address are resolved as needed.
func (x *run) ask(ctx context.Context, d *Delegation, qname string, qtype uint16, depth int) (*dns.Msg, kind, error) {
	q := new(dns.Msg)
	q.SetQuestion(qname, qtype)
	q.RecursionDesired = false
	if x.r.dnssec.Load() {
		q.SetEdns0(1232, true)
	}
	var addrs []netip.Addr
	for _, ns := range d.NS {
		addrs = append(addrs, d.Addrs[ns]...)
	}
	tried := map[netip.Addr]bool{}
	resolved := map[string]bool{}
	nsLookups := 0
	var errs []error
	for attempts := 0; attempts < maxAttempts; {
		var c *candidate
		for _, cand := range x.r.srv.rank(d.Zone, addrs, time.Now()) {
			if !tried[cand.addr] {
				c = &cand
				break
			}
		}
		if c == nil {
			more, err := x.resolveNS(ctx, d, resolved, &nsLookups, depth)
			if err != nil {
				return nil, 0, err
			}
			if len(more) == 0 {
				break
			}
			addrs = append(addrs, more...)
			continue
		}
		tried[c.addr] = true
		attempts++
		m, err := x.exchange(ctx, d.Zone, c, q)
		if err != nil {
			var le *LimitError
			if errors.As(err, &le) || ctx.Err() != nil {
				return nil, 0, err
			}
			errs = append(errs, err)
			continue
		}
		scrub(m, d.Zone)
		k := classify(m, d.Zone, qname)
		if k == kindLame {
			x.r.srv.setLame(d.Zone, c.addr, time.Now())
			errs = append(errs, fmt.Errorf("%s: lame for %s (%s, aa=%v)", c.addr, d.Zone, dns.RcodeToString[m.Rcode], m.Authoritative))
			continue
		}
		return m, k, nil
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no address for any name server"))
	}
	return nil, 0, fmt.Errorf("%w: %s: %w", ErrNoServer, d.Zone, errors.Join(errs...))
}

// exchange sends q to c once (twice when c rejects EDNS), counting it
// against the limits, and records how c did. REFUSED and SERVFAIL make c
// lame for zone.
func (x *run) exchange(ctx context.Context, zone string, c *candidate, q *dns.Msg) (*dns.Msg, error) {
	edns := c.edns
	for {
		if x.queries++; x.queries > x.r.limits.Queries {
			return nil, limit(LimitQueries)
		}
		left := time.Until(x.deadline)
		if left <= 0 {
			return nil, limit(LimitTime)
		}
		timeout := min(c.limit, left)
		start := time.Now()
		m, err := x.r.ex.Exchange(ctx, netip.AddrPortFrom(c.addr, x.r.port), q, edns, timeout)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !time.Now().Before(x.deadline) {
				return nil, limit(LimitTime)
			}
			x.r.srv.timedOut(c.addr, timeout, time.Now())
			return nil, fmt.Errorf("%s: %w", c.addr, err)
		}
		x.r.srv.answered(c.addr, time.Since(start))
		switch m.Rcode {
		case dns.RcodeFormatError, dns.RcodeNotImplemented:
			if edns {
				x.r.srv.setNoEDNS(c.addr)
				edns = false
				continue
			}
			x.r.srv.setLame(zone, c.addr, time.Now())
			return nil, fmt.Errorf("%s: %s", c.addr, dns.RcodeToString[m.Rcode])
		case dns.RcodeRefused, dns.RcodeServerFailure:
			x.r.srv.setLame(zone, c.addr, time.Now())
			return nil, fmt.Errorf("%s: %s for %s", c.addr, dns.RcodeToString[m.Rcode], zone)
		}
		return m, nil
	}
}

// resolveNS looks up the address of one more of d's name servers that has
// none, within the NS lookup and depth limits, and returns what it found
// (nothing when every name has been tried). Names within d's zone are not
// looked up: only d's own servers could say, and none of them answered.
func (x *run) resolveNS(ctx context.Context, d *Delegation, done map[string]bool, lookups *int, depth int) ([]netip.Addr, error) {
	for _, ns := range d.NS {
		if done[ns] || len(d.Addrs[ns]) > 0 || dns.IsSubDomain(d.Zone, ns) {
			continue
		}
		done[ns] = true
		if *lookups >= x.r.limits.NSLookups {
			return nil, limit(LimitNSLookups)
		}
		if depth+1 > x.r.limits.Depth {
			return nil, limit(LimitDepth)
		}
		*lookups++
		var found []netip.Addr
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			m, err := x.lookup(ctx, ns, t, depth+1)
			if err != nil {
				var le *LimitError
				if errors.As(err, &le) || ctx.Err() != nil {
					return nil, err
				}
				break
			}
			for _, rr := range m.Answer {
				switch v := rr.(type) {
				case *dns.A:
					found = appendAddr(found, v.A)
				case *dns.AAAA:
					found = appendAddr(found, v.AAAA)
				}
			}
			if len(found) > 0 {
				break
			}
		}
		if len(found) == 0 {
			continue
		}
		nd := d.clone()
		nd.Addrs[ns] = found
		x.r.cache.PutDelegation(nd, ttlOf(nd.TTL))
		return found, nil
	}
	return nil, nil
}

// scrub drops from m what the servers of zone have no authority for:
// answer and authority records owned outside zone, and from the
// additional section everything but addresses within zone (glue) and the
// OPT record.
func scrub(m *dns.Msg, zone string) {
	keep := func(rrs []dns.RR, ok func(dns.RR) bool) []dns.RR {
		out := rrs[:0]
		for _, rr := range rrs {
			if ok(rr) {
				out = append(out, rr)
			}
		}
		clear(rrs[len(out):])
		return out
	}
	inZone := func(rr dns.RR) bool { return dns.IsSubDomain(zone, rr.Header().Name) }
	m.Answer = keep(m.Answer, inZone)
	m.Ns = keep(m.Ns, inZone)
	m.Extra = keep(m.Extra, func(rr dns.RR) bool {
		switch rr.Header().Rrtype {
		case dns.TypeOPT:
			return true
		case dns.TypeA, dns.TypeAAAA:
			return inZone(rr)
		}
		return false
	})
}

// classify says what m, a reply from a server of zone to qname, is.
func classify(m *dns.Msg, zone, qname string) kind {
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return kindLame
	}
	if m.Authoritative {
		return kindAnswer
	}
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) > 0 {
		return kindLame
	}
	child := ""
	for _, rr := range m.Ns {
		if ns, ok := rr.(*dns.NS); ok {
			child = strings.ToLower(ns.Hdr.Name)
			break
		}
	}
	// A referral leads down from zone, toward qname: never up or aside.
	if child != "" && child != zone && dns.IsSubDomain(zone, child) && dns.IsSubDomain(child, qname) {
		return kindReferral
	}
	return kindLame
}
