// Package resolve is resolverd's answer to one query: from a local zone when
// the name lies in one, else from the upstreams of the forwarding group
// that covers it, else, with recursion on, from the root (resolverd/recurse). The gRPC service, its queue
// workers and the all-in-one dnsd all build it with Open and answer through
// its wire Resolve, so every answer is scrubbed here (dnsmsg.Scrub) before
// anything caches or serves it.
package resolve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/recurse"
	"github.com/shardns/shardns/resolverd/validate"
)

// Forwarder sends a query to the upstreams (resolverd/forward).
type Forwarder interface {
	ExchangeWire(ctx context.Context, q *dns.Msg) (forward.Answer, error)
}

// Authority answers from local zones (resolverd/zones). ok is false when the
// name is in none of them.
type Authority interface {
	Answer(q *dns.Msg) (m *dns.Msg, ok bool)
	Zones() []string
}

// maxChase bounds how many CNAMEs leaving the local zones are followed.
const maxChase = 8

// Resolver answers queries from local zones, then upstreams. Its zones
// and forwarders can be replaced while it answers (Reload).
type Resolver struct {
	cur      atomic.Pointer[state]
	scrubbed scrubCounts

	reloadMu sync.Mutex // serializes Reload and Close
	closed   bool       // under reloadMu
	log      *slog.Logger
	tap      forward.Tap           // Open's Config.Tap, kept by Reload
	reg      prometheus.Registerer // Open's Config.Registerer, for the iterator made later
	iter     *recurse.Resolver     // under reloadMu; made with the first state that recurses
	// recCache and recServers are Open's Config.RecurseCache and
	// RecurseServers, given to the iterator when it is made.
	recCache   recurse.Cache
	recServers recurse.ServerShare
	secure     *Validating // under reloadMu; made with the first state that validates
}

// state is what one query is answered from, read once per query so that a
// reload never changes the sources under a query in flight.
type state struct {
	zones  Authority       // may be nil
	fwd    Forwarder       // may be nil when every name is local
	router *forward.Router // fwd when Open or Reload built it, for metrics
	close  func() error    // stops what was started for this state; may be nil
	// rec resolves from the root what no zone or forwarding group
	// covers; nil without recursion. hints are its root hints.
	rec   Recursor
	hints *recurse.Hints
	// anchors are the trust anchors rec validates with; nil: rec does
	// not validate.
	anchors *validate.Anchors
}

// Recursor resolves a query iteratively from the root (resolverd/recurse).
type Recursor interface {
	Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
}

// scrubCounts counts what Scrub dropped, for the collector.
type scrubCounts struct {
	answer, authority, additional atomic.Uint64 // records, per section
	answers                       atomic.Uint64 // answers that lost any
}

// New returns a Resolver. Either part may be nil, not both.
func New(zones Authority, fwd Forwarder) (*Resolver, error) {
	if zones == nil && fwd == nil {
		return nil, fmt.Errorf("resolve: neither zones nor upstreams configured")
	}
	r := &Resolver{log: slog.New(slog.DiscardHandler)}
	r.cur.Store(&state{zones: zones, fwd: fwd})
	return r, nil
}

// ErrQuery is wrapped by the errors about a query that is not one: not
// parsable, a response, not QUERY, or not exactly one question.
var ErrQuery = errors.New("resolve: bad query")

// Resolve answers q, a packed query, with a packed answer that carries q's
// ID and question (see Exchange). It is the resolver as the lookup chain
// and the queue's workers use it (lookup.Resolver).
func (r *Resolver) Resolve(ctx context.Context, q []byte) ([]byte, error) {
	ans, _, _, err := r.ResolveWire(ctx, q)
	return ans, err
}

// ResolveWire is Resolve, also saying which source answered (as Exchange
// does) and the answer's RCODE. Errors about q wrap ErrQuery; any other
// means no answer could be had.
//
// A forwarded answer that scrubbing left whole is the upstream's own
// bytes under the answer's header (forward.Answer.Wire): no pack. Any
// other is packed with compression. Either way its OPT record (if q had
// one) is last, so that the lookup chain can store it by cutting that
// record off (dnsmsg.Policy.PrepareWire).
func (r *Resolver) ResolveWire(ctx context.Context, q []byte) (ans []byte, source string, rcode int, err error) {
	m := new(dns.Msg)
	if err := m.Unpack(q); err != nil {
		return nil, "", 0, fmt.Errorf("%w: unparsable: %w", ErrQuery, err)
	}
	if m.Response || m.Opcode != dns.OpcodeQuery || len(m.Question) != 1 {
		return nil, "", 0, fmt.Errorf("%w: not a query with one question", ErrQuery)
	}
	got, err := r.exchange(ctx, m)
	if err != nil {
		return nil, "", 0, err
	}
	a := got.Msg
	a.Id = m.Id
	if got.Wire != nil {
		// The upstream's bytes, unchanged but for the header: no pack.
		dnsmsg.PutHeader(got.Wire, &a.MsgHdr)
		return got.Wire, got.Source, a.Rcode, nil
	}
	a.Compress = true
	optLast(a)
	out, err := a.Pack()
	if err != nil {
		return nil, "", 0, fmt.Errorf("resolve: pack answer: %w", err)
	}
	return out, got.Source, a.Rcode, nil
}

// optLast moves m's OPT record to the end of its additional section,
// where RFC 6891 §6.1.1 allows it and most servers put it.
func optLast(m *dns.Msg) {
	for i, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT && i != len(m.Extra)-1 {
			copy(m.Extra[i:], m.Extra[i+1:])
			m.Extra[len(m.Extra)-1] = rr
			return
		}
	}
}

// Exchange answers q and says which source answered ("zone:<origin>", the
// upstream's address, or "recurse" for the iterator). A local answer that ends in a CNAME pointing out of
// the local zones is completed from the upstreams, as a recursive server
// would. Every answer, local or upstream, is scrubbed of the records
// unrelated to q's question (dnsmsg.Scrub). Errors mean no answer could be
// had at all.
func (r *Resolver) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, string, error) {
	a, err := r.exchange(ctx, q)
	return a.Msg, a.Source, err
}

// exchange is Exchange, with the answer's wire form when an upstream's
// bytes can serve as they are: scrubbing dropped none of their records
// (see forward.Answer.Wire).
func (r *Resolver) exchange(ctx context.Context, q *dns.Msg) (forward.Answer, error) {
	if len(q.Question) != 1 {
		return forward.Answer{}, fmt.Errorf("resolve: %d questions", len(q.Question))
	}
	st := r.cur.Load()
	if st.zones != nil {
		if m, ok := st.zones.Answer(q); ok {
			m.RecursionAvailable = true
			r.chase(ctx, st, q, m)
			r.scrub(m, q.Question[0])
			return forward.Answer{Msg: m, Source: "zone:" + st.origin(q.Question[0].Name)}, nil
		}
	}
	a, err := st.external(ctx, q)
	if err != nil {
		return forward.Answer{}, fmt.Errorf("resolve: %w", err)
	}
	if a.Msg == nil {
		return forward.Answer{Msg: refused(q), Source: "none"}, nil
	}
	// A forwarded answer is not this server's own data: AA on a reply
	// means a local zone answered (RFC 1035 §4.1.1), as with Unbound.
	a.Msg.Authoritative = false
	if r.scrub(a.Msg, q.Question[0]) {
		a.Wire = nil
	}
	return a, nil
}

// scrub drops from m the records unrelated to question, counts them, and
// reports whether it dropped any.
func (r *Resolver) scrub(m *dns.Msg, question dns.Question) (dropped bool) {
	n := dnsmsg.Scrub(m, question)
	if n.Total() == 0 {
		return false
	}
	r.scrubbed.answer.Add(uint64(n.Answer))
	r.scrubbed.authority.Add(uint64(n.Authority))
	r.scrubbed.additional.Add(uint64(n.Additional))
	r.scrubbed.answers.Add(1)
	return true
}

// chase follows a CNAME chain that leaves the local zones through the
// upstreams, appending what they answer. Failures leave the partial answer,
// which is still correct as far as it goes. The answer keeps the local
// zone's AA: it is about the first owner name, the question's (RFC 1035
// §4.1.1).
func (r *Resolver) chase(ctx context.Context, st *state, q *dns.Msg, m *dns.Msg) {
	qtype := q.Question[0].Qtype
	if qtype == dns.TypeCNAME || m.Rcode != dns.RcodeSuccess {
		return
	}
	seen := map[string]bool{dnsmsg.LowerName(q.Question[0].Name): true}
	for range maxChase {
		target := danglingCNAME(m, qtype)
		if target == "" || seen[dnsmsg.LowerName(target)] {
			return // complete, or a loop
		}
		seen[dnsmsg.LowerName(target)] = true
		sub := q.Copy()
		sub.Question[0].Name = target
		var next *dns.Msg
		if a, ok := st.zones.Answer(sub); ok {
			next = a
		} else {
			a, err := st.external(ctx, sub)
			if err != nil || a.Msg == nil {
				return
			}
			next = a.Msg
		}
		// Scrubbed against its own question before the chase reads it: a
		// stray CNAME must not lead the chase elsewhere.
		r.scrub(next, sub.Question[0])
		m.Answer = append(m.Answer, next.Answer...)
		m.Rcode = next.Rcode
		if len(next.Answer) == 0 {
			m.Ns = next.Ns
			return
		}
	}
}

// danglingCNAME returns the target of the last CNAME in m's answer when no
// record in the answer is owned by it; "" when the chain is complete.
func danglingCNAME(m *dns.Msg, qtype uint16) string {
	if len(m.Answer) == 0 {
		return ""
	}
	last, ok := m.Answer[len(m.Answer)-1].(*dns.CNAME)
	if !ok {
		return ""
	}
	for _, rr := range m.Answer {
		if dnsmsg.EqualNames(rr.Header().Name, last.Target) && rr.Header().Rrtype == qtype {
			return ""
		}
	}
	return last.Target
}

// recursed is the source of answers the iterator found.
const recursed = "recurse"

// external answers q from outside the local zones: the forwarding group
// that covers its name, else the iterator. The answer's Msg is nil when
// neither does.
func (st *state) external(ctx context.Context, q *dns.Msg) (forward.Answer, error) {
	if st.fwd != nil {
		a, err := st.fwd.ExchangeWire(ctx, q)
		if !errors.Is(err, forward.ErrNoRoute) {
			return a, err
		}
	}
	if st.rec == nil {
		return forward.Answer{}, nil
	}
	m, err := st.rec.Resolve(ctx, q)
	return forward.Answer{Msg: m, Source: recursed}, err
}

func refused(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(q, dns.RcodeRefused)
	return m
}

// origin is the longest local zone that contains name.
func (st *state) origin(name string) string {
	best := ""
	for _, z := range st.zones.Zones() {
		if len(z) > len(best) && dns.IsSubDomain(z, name) {
			best = z
		}
	}
	return best
}
