// Package validate validates DNSSEC (RFC 4033-4035, 5155, 6840): it decides
// whether an answer is secure, insecure or bogus by following the chain of
// trust from a trust anchor down to the zone that signed the answer, and by
// checking the NSEC and NSEC3 proofs of negative and wildcard answers.
//
// It fetches nothing itself: the resolver that calls it supplies a KeySource
// that answers DS and DNSKEY queries, so the same validator serves any way of
// fetching records.
package validate

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Security is the outcome of validating an answer (RFC 4033 §5).
type Security uint8

const (
	// Indeterminate: no trust anchor covers the answer, or the response
	// carries nothing that can be validated (SERVFAIL, REFUSED, ...).
	Indeterminate Security = iota
	// Secure: every RRset and proof of the answer chains to a trust anchor.
	Secure
	// Insecure: the answer lies below a delegation proven unsigned (no DS,
	// or an NSEC3 opt-out span), in a zone signed only with algorithms or
	// digests this validator does not support, or is proven only by NSEC3
	// records with too many iterations or an unknown hash algorithm.
	Insecure
	// Bogus: a chain of trust should exist and does not hold.
	Bogus
)

// String returns the RFC 4033 name of s.
func (s Security) String() string {
	switch s {
	case Secure:
		return "secure"
	case Insecure:
		return "insecure"
	case Bogus:
		return "bogus"
	}
	return "indeterminate"
}

// Result is the verdict on one answer. EDE is the RFC 8914 extended error
// code that explains a Bogus result (6, 7, 8, 9, 10, 12, or 22 when keys
// could not be fetched), or an Insecure one caused by an unsupported
// algorithm (1), digest (2) or NSEC3 iteration count (27); 0 when none
// applies. Why says the same in words, for logs.
//
// Expires, for a Secure result, is the latest time the answer may be served
// as secure: no later than the TTL, the original TTL or the signature
// expiry of any RRset or proof it was validated by. It is zero otherwise.
type Result struct {
	Security Security
	EDE      uint16
	Why      string
	Expires  time.Time
}

// KeySource fetches the records the chain of trust is built from. The
// resolver implements it; the validator calls it with a context carrying
// the deadline of the validation, from many goroutines at once.
type KeySource interface {
	// Fetch returns the response to the query (q.Name, q.Type, IN), asked
	// with the DO bit set (and CD set, so that a validating upstream passes
	// bogus data on for this validator to judge): the answer section with
	// its RRSIGs and, for a negative answer, the authority section with the
	// SOA and the NSEC or NSEC3 records and their RRSIGs. q.Type is
	// dns.TypeDNSKEY or dns.TypeDS; q.Zone names the zone whose servers
	// must answer: the zone itself for DNSKEY, and for DS the zone above
	// q.Name (the parent side of a zone cut, RFC 4035 §4.2), which the
	// validator has proven to hold q.Name. An error means no response could
	// be had; the validation is then bogus with EDE 22. The validator only
	// reads the message, so a cached one may be returned as it is.
	Fetch(ctx context.Context, q KeyQuery) (*dns.Msg, error)
}

// KeyQuery is one query of the chain of trust.
type KeyQuery struct {
	Name string // the owner asked for, lower case, fully qualified
	Type uint16 // dns.TypeDNSKEY or dns.TypeDS
	Zone string // the zone whose servers hold the answer
}

// Config are a Validator's settings; zero fields take their defaults.
type Config struct {
	// Anchors are the trust anchors; nil: RootAnchors().
	Anchors *Anchors
	// Now returns the time signatures are checked against; nil: time.Now.
	Now func() time.Time
	// ClockSkew widens every signature's validity window on both sides, for
	// clocks slightly off; 0: DefaultClockSkew.
	ClockSkew time.Duration
	// MaxNSEC3Iterations is the highest NSEC3 iteration count accepted; a
	// proof with more makes the answer insecure (RFC 9276 §3.2); 0:
	// DefaultMaxNSEC3Iterations.
	MaxNSEC3Iterations uint16
	// CacheSize bounds the zones whose validated state (keys, insecure cut,
	// no cut) is kept between calls; 0: DefaultCacheSize, negative: none.
	CacheSize int
	// MaxCacheTTL caps how long a zone's validated state is kept; 0:
	// DefaultMaxCacheTTL.
	MaxCacheTTL time.Duration
}

// Defaults of Config.
const (
	DefaultClockSkew          = 5 * time.Minute
	DefaultMaxNSEC3Iterations = 50
	DefaultCacheSize          = 10000
	DefaultMaxCacheTTL        = 6 * time.Hour
)

// Validator validates answers against its trust anchors. It is safe for
// concurrent use.
type Validator struct {
	anchors  *Anchors
	now      func() time.Time
	skew     time.Duration
	maxIter  uint16
	maxTTL   time.Duration
	capacity int

	mu    sync.Mutex
	cache map[string]zoneState
}

// New returns a Validator with cfg's settings.
func New(cfg Config) *Validator {
	v := &Validator{
		anchors:  cfg.Anchors,
		now:      cfg.Now,
		skew:     cfg.ClockSkew,
		maxIter:  cfg.MaxNSEC3Iterations,
		maxTTL:   cfg.MaxCacheTTL,
		capacity: cfg.CacheSize,
		cache:    map[string]zoneState{},
	}
	if v.anchors == nil {
		v.anchors = RootAnchors()
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.skew <= 0 {
		v.skew = DefaultClockSkew
	}
	if v.maxIter == 0 {
		v.maxIter = DefaultMaxNSEC3Iterations
	}
	if v.maxTTL <= 0 {
		v.maxTTL = DefaultMaxCacheTTL
	}
	if v.capacity == 0 {
		v.capacity = DefaultCacheSize
	}
	return v
}

// cutKind is what the chain walk learned about a name.
type cutKind uint8

const (
	// secureZone: the name is a zone apex whose DNSKEY RRset validated.
	secureZone cutKind = iota + 1
	// insecureCut: the name is (or lies below) a delegation proven
	// unsigned, or a zone with no supported DS.
	insecureCut
	// noCut: the name is no zone cut; it belongs to the zone above it.
	noCut
	// noName: the name does not exist, so no zone cut lies at or below it.
	noName
)

// zoneState is what the walk learned about one name, kept in the cache.
type zoneState struct {
	kind    cutKind
	zone    string
	keys    []*dns.DNSKEY
	res     Result // for insecureCut: why
	expires time.Time
}

// Validate validates resp, the response to q, fetching DS and DNSKEY
// RRsets from keys as the chain of trust needs them. It does not change
// resp. resp must be a final answer (not a referral), with the CNAME and
// DNAME chain assembled in its answer section and, for a negative answer
// or a wildcard expansion, the proofs of the zone that gave the last link
// in its authority section. A response whose rcode is neither NOERROR nor
// NXDOMAIN, and a query for RRSIG, are Indeterminate.
func (v *Validator) Validate(ctx context.Context, q dns.Question, resp *dns.Msg, keys KeySource) Result {
	if resp == nil {
		return Result{Security: Indeterminate, Why: "no response"}
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return Result{Security: Indeterminate, Why: "rcode " + dns.RcodeToString[resp.Rcode] + " carries nothing to validate"}
	}
	if q.Qtype == dns.TypeRRSIG {
		// RRSIGs are not signed themselves (RFC 4035 §2.2): an answer of
		// them alone has nothing to validate.
		return Result{Security: Indeterminate, Why: "RRSIG queries carry no signed data"}
	}
	c := &check{v: v, ks: keys, now: v.now()}
	r := c.response(ctx, q, resp)
	if r.Security == Secure {
		r.Expires = c.expires
	}
	return r
}

// check is the state of one Validate call.
type check struct {
	v   *Validator
	ks  KeySource
	now time.Time
	// expires is the earliest expiry of the answer's RRsets and proofs.
	expires time.Time
}

// bound lowers c.expires to t.
func (c *check) bound(t time.Time) {
	if c.expires.IsZero() || t.Before(c.expires) {
		c.expires = t
	}
}

// worse reports whether a is a worse verdict than b: bogus, then
// indeterminate, then insecure, then secure.
func worse(a, b Security) bool {
	rank := func(s Security) int {
		switch s {
		case Bogus:
			return 3
		case Indeterminate:
			return 2
		case Insecure:
			return 1
		}
		return 0
	}
	return rank(a) > rank(b)
}

func bogus(ede uint16, format string, args ...any) Result {
	return Result{Security: Bogus, EDE: ede, Why: fmt.Sprintf(format, args...)}
}

func insecure(ede uint16, format string, args ...any) Result {
	return Result{Security: Insecure, EDE: ede, Why: fmt.Sprintf(format, args...)}
}

// cached returns the state kept for name, if fresh.
func (v *Validator) cached(name string, now time.Time) (zoneState, bool) {
	if v.capacity < 0 {
		return zoneState{}, false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	st, ok := v.cache[name]
	if !ok {
		return zoneState{}, false
	}
	if !now.Before(st.expires) {
		delete(v.cache, name)
		return zoneState{}, false
	}
	return st, true
}

// remember keeps st for name until expires (capped by MaxCacheTTL). When
// the cache is full, an arbitrary entry makes room.
func (v *Validator) remember(name string, st zoneState, now time.Time) {
	if v.capacity < 0 {
		return
	}
	if limit := now.Add(v.maxTTL); st.expires.IsZero() || st.expires.After(limit) {
		st.expires = limit
	}
	if !now.Before(st.expires) {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.cache[name]; !ok && len(v.cache) >= v.capacity {
		for k := range v.cache {
			delete(v.cache, k)
			break
		}
	}
	v.cache[name] = st
}

// Flush forgets every zone state kept between calls (after the trust
// anchors or the clock changed).
func (v *Validator) Flush() {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.cache)
}

// canonical is the lower-case, fully qualified form of name.
func canonical(name string) string { return dns.CanonicalName(name) }

// parentName returns the name one label up from name ("." stays ".").
func parentName(name string) string {
	if name == "." {
		return "."
	}
	i, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[i:]
}

// ancestorAt returns the ancestor of name (or name itself) with n labels.
func ancestorAt(name string, n int) string {
	if n <= 0 {
		return "."
	}
	idx := dns.Split(name)
	if n >= len(idx) {
		return name
	}
	return name[idx[len(idx)-n]:]
}

// isSubdomain reports whether child is parent or lies below it.
func isSubdomain(parent, child string) bool {
	return dns.IsSubDomain(strings.ToLower(parent), strings.ToLower(child))
}
