package validate

import (
	"context"
	"strings"

	"github.com/miekg/dns"
)

// maxChain bounds the CNAME and DNAME links followed through one answer.
const maxChain = 16

// wildcardUse is an answer RRset expanded from a wildcard, whose proof of
// no closer match must be in the authority section.
type wildcardUse struct {
	owner  string
	labels uint8
	zone   zoneState
}

// response validates a whole response: every RRset of the answer's CNAME
// and DNAME chain, the proofs for wildcard expansions, and for a negative
// answer the proof of denial at the end of the chain.
func (c *check) response(ctx context.Context, q dns.Question, resp *dns.Msg) Result {
	overall := Result{Security: Secure}
	merge := func(r Result) bool {
		if worse(r.Security, overall.Security) {
			overall = r
		}
		return overall.Security == Bogus
	}
	ans := group(resp.Answer)
	var wilds []wildcardUse
	// set validates one answer RRset and notes a wildcard expansion.
	set := func(s *rrset) bool {
		st, v, res := c.rrset(ctx, s)
		if merge(res) {
			return true
		}
		if res.Security == Secure {
			c.bound(c.ttlExpiry(s, v))
			owner := canonical(s.name)
			n := dns.CountLabel(owner)
			if strings.HasPrefix(owner, "*.") {
				n--
			}
			if int(v.labels) < n {
				wilds = append(wilds, wildcardUse{owner: owner, labels: v.labels, zone: st})
			}
		}
		return false
	}

	name := canonical(q.Name)
	positive := false
	for link := 0; link < maxChain; link++ {
		for _, s := range ans {
			if strings.EqualFold(canonical(s.name), name) && (s.rtype == q.Qtype || q.Qtype == dns.TypeANY) {
				positive = true
				if set(s) {
					return overall
				}
			}
		}
		if positive || q.Qtype == dns.TypeCNAME {
			break
		}
		next := ""
		// A DNAME above name rewrites it; the CNAME synthesised from it is
		// unsigned (RFC 6672 §5.3.3) and must agree with the rewrite.
		for _, s := range ans {
			if s.rtype != dns.TypeDNAME || !isSubdomain(s.name, name) || strings.EqualFold(canonical(s.name), name) {
				continue
			}
			if set(s) {
				return overall
			}
			owner := canonical(s.name)
			next = canonical(strings.TrimSuffix(name, owner) + target(s.rrs[0]))
			for _, cs := range ans {
				if cs.rtype == dns.TypeCNAME && strings.EqualFold(canonical(cs.name), name) && !strings.EqualFold(canonical(target(cs.rrs[0])), next) {
					merge(bogus(dns.ExtendedErrorCodeDNSBogus, "CNAME %s does not follow from DNAME %s", name, owner))
					return overall
				}
			}
			break
		}
		if next == "" {
			for _, s := range ans {
				if s.rtype == dns.TypeCNAME && strings.EqualFold(canonical(s.name), name) {
					if set(s) {
						return overall
					}
					next = canonical(target(s.rrs[0]))
					break
				}
			}
		}
		if next == "" {
			break
		}
		name = next
	}

	if positive {
		for _, w := range wilds {
			d, res := c.denial(resp.Ns, w.zone)
			if res.Security != Secure {
				res.Why = "wildcard answer " + w.owner + ": " + res.Why
				if merge(res) {
					return overall
				}
				continue
			}
			c.bound(d.expires)
			if merge(c.outcome(d.wildcard(w.owner, w.labels), "wildcard answer "+w.owner)) {
				return overall
			}
		}
		return overall
	}
	merge(c.negative(ctx, name, q.Qtype, resp))
	return overall
}

// outcome turns a proof's kind into a result; what names the proof for
// the Why.
func (c *check) outcome(k proofKind, what string) Result {
	switch k {
	case proofOK:
		return Result{Security: Secure}
	case proofOptOut:
		return insecure(0, "%s: covered by an NSEC3 opt-out span", what)
	case proofIterations:
		return insecure(dns.ExtendedErrorCodeUnsupportedNSEC3IterValue, "%s: NSEC3 iterations above %d", what, c.v.maxIter)
	case proofUnknownHash:
		return insecure(0, "%s: NSEC3 records of an unknown hash algorithm only", what)
	}
	return bogus(dns.ExtendedErrorCodeNSECMissing, "%s: the NSEC/NSEC3 records do not prove it", what)
}

// rrset validates one RRset: the chain down to its signer, then its
// signature. Unsigned, it is insecure only below a proven insecure
// delegation.
func (c *check) rrset(ctx context.Context, s *rrset) (zoneState, verified, Result) {
	signer := s.signer()
	if signer == "" {
		st := c.chain(ctx, s.name)
		if st.kind == secureZone {
			return st, verified{}, bogus(dns.ExtendedErrorCodeRRSIGsMissing, "%s/%s has no RRSIG in secure zone %s", s.name, dns.TypeToString[s.rtype], st.zone)
		}
		return st, verified{}, st.res
	}
	if !isSubdomain(signer, s.name) {
		return zoneState{}, verified{}, bogus(dns.ExtendedErrorCodeDNSBogus, "%s/%s signed by %s, which is not above it", s.name, dns.TypeToString[s.rtype], signer)
	}
	st := c.chain(ctx, signer)
	if st.kind != secureZone {
		return st, verified{}, st.res
	}
	if st.zone != signer {
		return st, verified{}, bogus(dns.ExtendedErrorCodeDNSBogus, "%s/%s signed by %s, which is not a zone apex (the zone is %s)", s.name, dns.TypeToString[s.rtype], signer, st.zone)
	}
	v, res := c.verifyRRset(s, st.zone, st.keys)
	return st, v, res
}

// negative validates a response that denies name/qtype: NXDOMAIN or NODATA
// proven by the authority section's NSEC or NSEC3 records of the zone that
// signed them.
func (c *check) negative(ctx context.Context, name string, qtype uint16, resp *dns.Msg) Result {
	auth := group(resp.Ns)
	signer := ""
	for _, s := range auth {
		if s.rtype == dns.TypeNSEC || s.rtype == dns.TypeNSEC3 || s.rtype == dns.TypeSOA {
			if signer = s.signer(); signer != "" {
				break
			}
		}
	}
	what := "NODATA " + name + "/" + dns.TypeToString[qtype]
	if resp.Rcode == dns.RcodeNameError {
		what = "NXDOMAIN " + name
	}
	if signer == "" {
		st := c.chain(ctx, name)
		if st.kind == secureZone {
			return bogus(dns.ExtendedErrorCodeNSECMissing, "%s: no signed proof from secure zone %s", what, st.zone)
		}
		return st.res
	}
	if !isSubdomain(signer, name) {
		return bogus(dns.ExtendedErrorCodeDNSBogus, "%s: proof signed by %s, which is not above the name", what, signer)
	}
	st := c.chain(ctx, signer)
	if st.kind != secureZone {
		return st.res
	}
	if st.zone != signer {
		return bogus(dns.ExtendedErrorCodeDNSBogus, "%s: proof signed by %s, which is not a zone apex", what, signer)
	}
	for _, s := range auth {
		if s.rtype == dns.TypeSOA {
			v, res := c.verifyRRset(s, st.zone, st.keys)
			if res.Security != Secure {
				res.Why = what + ": " + res.Why
				return res
			}
			c.bound(c.ttlExpiry(s, v))
		}
	}
	d, res := c.denial(resp.Ns, st)
	if res.Security != Secure {
		res.Why = what + ": " + res.Why
		return res
	}
	c.bound(d.expires)
	var k proofKind
	if resp.Rcode == dns.RcodeNameError {
		k = d.nxdomain(name)
	} else {
		k = d.nodata(name, qtype)
	}
	return c.outcome(k, what)
}

// target is the name a CNAME or DNAME points to ("" for other records).
func target(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.CNAME:
		return rr.Target
	case *dns.DNAME:
		return rr.Target
	}
	return ""
}
