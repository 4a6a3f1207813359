package dnsmsg

import (
	"time"

	"github.com/miekg/dns"
)

// DefaultServfailTTL is how long a SERVFAIL answer is cached at most.
const DefaultServfailTTL = 5 * time.Second

// DefaultMaxNegativeTTL is the default of -max-negative-ttl, as Unbound's
// cache-max-negative-ttl.
const DefaultMaxNegativeTTL = time.Hour

// Policy holds the clamps applied to every TTL the cache stores.
type Policy struct {
	MinTTL time.Duration // -min-ttl: a shorter TTL is raised to this
	MaxTTL time.Duration // -max-ttl: a longer TTL is lowered to this
	// MaxNegativeTTL (-max-negative-ttl) caps the TTL of a negative answer
	// (NXDOMAIN, NODATA) after the clamps above, so it wins over MinTTL;
	// 0 leaves negative answers to MaxTTL alone.
	MaxNegativeTTL time.Duration
	ServfailTTL    time.Duration // how long SERVFAIL is cached; 0 = DefaultServfailTTL
}

// ttlValue reads a TTL as RFC 2181 §8 says: a value with the top bit set
// counts as 0.
func ttlValue(t uint32) uint32 {
	if t&0x80000000 != 0 {
		return 0
	}
	return t
}

// CacheTTL says how long m may be cached, in seconds, and whether it may be
// cached at all:
//
//   - a truncated answer: never;
//   - NOERROR with answers: the minimum TTL over answer and authority records;
//   - NXDOMAIN, and NOERROR with no answers (NODATA): min(SOA TTL, SOA
//     MINIMUM) of the SOA in the authority section (RFC 2308 §5), at most
//     MaxNegativeTTL; without a SOA it is not cached;
//   - SERVFAIL: ServfailTTL (a few seconds), never more than MaxTTL;
//   - any other RCODE: not cached.
//
// Positive and negative TTLs are then clamped to [MinTTL, MaxTTL]. A TTL of 0
// means the answer may be served but not stored.
func (p Policy) CacheTTL(m *dns.Msg) (uint32, bool) {
	f := ttlFacts{truncated: m.Truncated, rcode: m.Rcode, answers: len(m.Answer) > 0}
	if f.answers {
		f.minTTL = minTTL(m.Answer, m.Ns)
	}
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			f.soa, f.soaTTL, f.soaMin = true, soa.Hdr.Ttl, soa.Minttl
			break
		}
	}
	return p.ttl(f)
}

// ttlFacts is what CacheTTL's rules read from an answer, whether parsed
// (CacheTTL) or walked on the wire (PrepareWire).
type ttlFacts struct {
	truncated bool
	rcode     int  // with the OPT record's extended bits
	answers   bool // the answer section holds records
	minTTL    uint32
	// The first SOA record of the authority section: its TTL and its
	// MINIMUM field, both as sent.
	soa            bool
	soaTTL, soaMin uint32
}

// ttl applies CacheTTL's rules to f.
func (p Policy) ttl(f ttlFacts) (uint32, bool) {
	if f.truncated {
		return 0, false
	}
	switch f.rcode {
	case dns.RcodeSuccess:
		if !f.answers {
			return p.negative(f)
		}
		return p.clamp(f.minTTL), true
	case dns.RcodeNameError:
		return p.negative(f)
	case dns.RcodeServerFailure:
		ttl := p.ServfailTTL
		if ttl <= 0 {
			ttl = DefaultServfailTTL
		}
		if p.MaxTTL > 0 && ttl > p.MaxTTL {
			ttl = p.MaxTTL
		}
		return uint32(ttl / time.Second), true
	}
	return 0, false
}

// negative is the TTL of a negative answer (RFC 2308 §5), from its SOA.
func (p Policy) negative(f ttlFacts) (uint32, bool) {
	if !f.soa {
		return 0, false
	}
	ttl := p.clamp(min(ttlValue(f.soaTTL), ttlValue(f.soaMin)))
	if p.MaxNegativeTTL > 0 {
		ttl = min(ttl, uint32(p.MaxNegativeTTL/time.Second))
	}
	return ttl, true
}

func (p Policy) clamp(ttl uint32) uint32 {
	if lo := uint32(p.MinTTL / time.Second); ttl < lo {
		ttl = lo
	}
	if p.MaxTTL > 0 {
		if hi := uint32(p.MaxTTL / time.Second); ttl > hi {
			ttl = hi
		}
	}
	return ttl
}

func minTTL(sections ...[]dns.RR) uint32 {
	lowest := uint32(1<<31 - 1)
	for _, s := range sections {
		for _, rr := range s {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			lowest = min(lowest, ttlValue(rr.Header().Ttl))
		}
	}
	return lowest
}
