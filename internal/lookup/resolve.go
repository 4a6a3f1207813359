package lookup

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// resolveStep asks the resolver and turns its answer into a cache entry
// under the TTL policy.
type resolveStep struct {
	resolver Resolver
	rules    atomic.Pointer[Rules] // replaced by Chain.SetRules
	now      func() time.Time
	metrics  *metrics
}

// Rules are how a resolver's answer becomes a cache entry (NewEntry):
// the TTL policy and the serve-stale window. A reload replaces them
// whole.
type Rules struct {
	Policy dnsmsg.Policy
	Stale  time.Duration
}

func (s *resolveStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	s.metrics.resolves.Inc()
	wire, err := q.AppendUpstream(nil, dns.Id())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResolver, err)
	}
	ans, err := s.resolver.Resolve(ctx, wire)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w: %w", ErrTimeout, ErrResolver, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrResolver, err)
	}
	if !dnsmsg.AnswersQuery(wire, ans) {
		return nil, fmt.Errorf("%w: the answer is to another question", ErrResolver)
	}
	now := s.now()
	r := s.rules.Load()
	e, cacheable, err := NewEntry(ans, r.Policy, r.Stale, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResolver, err)
	}
	return &Result{Entry: e, Source: SourceResolver, Now: now, cacheable: cacheable}, nil
}

// failureEDE returns the first Extended DNS Error of ans, a packed
// answer, when ans is a SERVFAIL that carries one. Other answers are not
// unpacked, so a good answer costs one byte read.
func failureEDE(ans []byte) (code uint16, text string, ok bool) {
	if len(ans) < 4 || int(ans[3]&0x0F) != dns.RcodeServerFailure {
		return 0, "", false
	}
	m := new(dns.Msg)
	if m.Unpack(ans) != nil {
		return 0, "", false
	}
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, isEDE := o.(*dns.EDNS0_EDE); isEDE {
				return e.InfoCode, e.ExtraText, true
			}
		}
	}
	return 0, "", false
}

// NewEntry turns a resolver's packed answer into a cache entry stored at
// now, under the TTL policy and with the serve-stale window, and reports
// whether the policy lets it be cached. The entry keeps ans, laid out in
// place (dnsmsg.Policy.PrepareWire). The query path and the queue's
// workers both store answers through it, so both follow the same rules.
// A failure (see Failure) gets no stale window: it is never served stale.
// A SERVFAIL that carries an Extended DNS Error keeps it in the entry's
// EDE and is not cacheable: the encoded entry has no OPT record, and a
// copy served without the error would hide why it failed (a DNSSEC
// validation failure); the failure step remembers it, error and all.
func NewEntry(ans []byte, policy dnsmsg.Policy, stale time.Duration, now time.Time) (*cache.Entry, bool, error) {
	code, text, hasEDE := failureEDE(ans)
	st, ttl, cacheable, err := policy.PrepareWire(ans)
	if err != nil {
		return nil, false, err
	}
	e := &cache.Entry{StoredAt: now, TTL: ttl, Offsets: st.Offsets, Msg: st.Msg}
	if hasEDE {
		e.EDE, cacheable = &cache.ExtendedError{Code: code, Text: text}, false
	}
	e.StaleUntil = e.Expires()
	if cacheable && stale > 0 && !Failure(e) {
		e.StaleUntil = e.StaleUntil.Add(stale)
	}
	return e, cacheable, nil
}

// Failure reports whether e is a resolver's failure to answer (SERVFAIL,
// REFUSED) rather than data (an answer, NXDOMAIN, NODATA): a failure
// never replaces a good entry in the cache, and where a good entry is
// still inside its stale window, that entry is served instead (RFC 8767).
func Failure(e *cache.Entry) bool {
	switch e.Rcode() {
	case dns.RcodeServerFailure, dns.RcodeRefused:
		return true
	}
	return false
}
