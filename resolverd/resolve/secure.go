package resolve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/resolverd/recurse"
	"github.com/shardns/shardns/resolverd/validate"
)

// Iterator resolves names from the root and says which zone cuts it
// walked (recurse.Resolver).
type Iterator interface {
	Lookup(ctx context.Context, name string, qtype uint16) (*recurse.Result, error)
}

// Validating answers queries from the root through an Iterator and
// validates what it finds with DNSSEC (RFC 4035 §4.3, RFC 6840 §5):
//
//   - secure: the answer, AD set (the frontend that replies to the
//     client keeps it only for a client that set DO or AD), every TTL
//     capped by the time the validation holds (validate.Result.Expires);
//   - insecure (and indeterminate): the answer, AD clear;
//   - bogus: SERVFAIL, no records, and the Extended DNS Error (RFC 8914)
//     the validator gives, with its reason as the text;
//   - CD set: the answer unvalidated, AD clear (RFC 4035 §3.2.2).
//
// A query without DO gets no RRSIG, NSEC or NSEC3 records but those of
// the type it asked for (RFC 4035 §3.2.1). The DS and DNSKEY RRsets of
// the chain of trust are fetched through the same Iterator, and so cached
// in its cache. The validator may be swapped while queries are answered
// (SetValidator), after the trust anchors changed.
type Validating struct {
	it      Iterator
	val     atomic.Pointer[validate.Validator]
	now     func() time.Time
	results *prometheus.CounterVec
}

// NewValidating returns a Validating answering through it and validating
// with v.
func NewValidating(it Iterator, v *validate.Validator) *Validating {
	s := &Validating{it: it, now: time.Now, results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shardns_dnssec_validations_total",
		Help: "Answers resolved from the root, by DNSSEC verdict: secure, insecure, bogus (answered SERVFAIL with an EDE), indeterminate (nothing to validate), unchecked (the query set CD).",
	}, []string{"result"})}
	for _, l := range []string{"secure", "insecure", "bogus", "indeterminate", "unchecked"} {
		s.results.WithLabelValues(l)
	}
	s.val.Store(v)
	return s
}

// Results returns shardns_dnssec_validations_total, for the daemon's
// registry.
func (s *Validating) Results() *prometheus.CounterVec { return s.results }

// SetValidator replaces the validator; queries in flight finish with the
// one they started with.
func (s *Validating) SetValidator(v *validate.Validator) { s.val.Store(v) }

// Fetch answers the chain of trust's DS and DNSKEY queries through the
// iterator (validate.KeySource): it finds the zone that holds each
// RRset itself (the parent side for DS), and its cache keeps them.
func (s *Validating) Fetch(ctx context.Context, q validate.KeyQuery) (*dns.Msg, error) {
	res, err := s.it.Lookup(ctx, q.Name, q.Type)
	if err != nil {
		return nil, fmt.Errorf("resolve: fetch %s %s: %w", q.Name, dns.TypeToString[q.Type], err)
	}
	return res.Msg, nil
}

// Resolve answers q, a client's query, from the root: q's ID, question
// (as spelt) and RD, RA set, AA clear, and an OPT record when q has one.
// A resolution that fails is answered SERVFAIL with an Extended DNS Error
// saying why (recurse.FailureEDE); the error is ctx's when it ended first.
func (s *Validating) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if len(q.Question) != 1 {
		return nil, errors.New("resolve: query must have exactly one question")
	}
	qq := q.Question[0]
	opt := q.IsEdns0()
	do := opt != nil && opt.Do()
	out := new(dns.Msg)
	out.SetReply(q)
	out.RecursionAvailable = true
	out.CheckingDisabled = q.CheckingDisabled
	if opt != nil {
		out.SetEdns0(1232, do)
	}
	name := strings.ToLower(dns.Fqdn(qq.Name))
	res, err := s.it.Lookup(ctx, name, qq.Qtype)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("resolve: %w", ctx.Err())
	case err != nil:
		out.Rcode = dns.RcodeServerFailure
		if opt != nil {
			o := out.IsEdns0()
			o.Option = append(o.Option, recurse.FailureEDE(err))
		}
		return out, nil
	}
	var expires time.Time // of a secure answer
	if q.CheckingDisabled {
		s.results.WithLabelValues("unchecked").Inc()
	} else {
		v := s.val.Load()
		r := v.Validate(ctx, dns.Question{Name: name, Qtype: qq.Qtype, Qclass: dns.ClassINET}, res.Msg, s)
		s.results.WithLabelValues(r.Security.String()).Inc()
		switch r.Security {
		case validate.Bogus:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("resolve: validate: %w", ctx.Err())
			}
			out.Rcode = dns.RcodeServerFailure
			if opt != nil {
				o := out.IsEdns0()
				o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: r.EDE, ExtraText: recurse.EDEText(r.Why)})
			}
			return out, nil
		case validate.Secure:
			// Set whatever the query's DO and AD: the answer is cached
			// under a key without AD, and the frontend clears AD in the
			// reply to a client that set neither (RFC 6840 §5.8,
			// dnsmsg.AppendReply).
			out.AuthenticatedData = true
			expires = r.Expires
		}
	}
	out.Rcode = res.Msg.Rcode
	out.Answer = withoutDNSSEC(res.Msg.Answer, qq.Qtype, do)
	out.Ns = withoutDNSSEC(res.Msg.Ns, qq.Qtype, do)
	for _, sec := range [][]dns.RR{out.Answer, out.Ns} {
		for _, rr := range sec {
			if h := rr.Header(); h.Name != qq.Name && strings.EqualFold(h.Name, qq.Name) {
				h.Name = qq.Name
			}
		}
	}
	capTTL(out, expires, s.now())
	return out, nil
}

// withoutDNSSEC returns rrs, copied so that the iterator's cached records
// are never written, without the RRSIG, NSEC and NSEC3 records a query
// without DO must not get (RFC 4035 §3.2.1), unless it asked for that
// type.
func withoutDNSSEC(rrs []dns.RR, qtype uint16, do bool) []dns.RR {
	out := make([]dns.RR, 0, len(rrs))
	for _, rr := range rrs {
		if t := rr.Header().Rrtype; !do && t != qtype && (t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeNSEC3) {
			continue
		}
		out = append(out, dns.Copy(rr))
	}
	return out
}

// capTTL lowers every TTL of m to the seconds left until expires, so
// that no cache keeps a secure answer past the validation that made it
// so (its signatures' expiry, their original TTL).
func capTTL(m *dns.Msg, expires, now time.Time) {
	if expires.IsZero() {
		return
	}
	left := max(expires.Sub(now), 0)
	limit := uint32(min(left/time.Second, 1<<31-1))
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			if h := rr.Header(); h.Ttl > limit {
				h.Ttl = limit
			}
		}
	}
}
