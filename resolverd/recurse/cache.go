package recurse

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Delegation is a zone cut: the zone's name servers and the addresses
// known for them (glue taken in bailiwick, or resolved). A Delegation in
// a Cache is never modified; a changed one is stored as a new value.
type Delegation struct {
	// Zone is the delegated zone, lower case, fully qualified.
	Zone string
	// NS are the zone's name servers, lower case, fully qualified.
	NS []string
	// Addrs holds the known addresses of some of NS.
	Addrs map[string][]netip.Addr
	// TTL is the NS RRset's TTL, in seconds, as received.
	TTL uint32
}

// clone returns a copy of d that can be changed without touching d.
func (d *Delegation) clone() *Delegation {
	c := &Delegation{Zone: d.Zone, NS: slices.Clone(d.NS), TTL: d.TTL, Addrs: make(map[string][]netip.Addr, len(d.Addrs))}
	for k, v := range d.Addrs {
		c.Addrs[k] = slices.Clone(v)
	}
	return c
}

// Cache holds what the iterator learns: delegations and the answers it
// was given along the way. Implementations bound their size and forget
// entries at their TTL. A Get returns nothing past the entry's TTL. It
// must be safe for concurrent use. The in-memory MemCache is one; a
// shared layer (Redis) can sit under it by implementing the same calls.
type Cache interface {
	// Delegation returns the delegation of zone (lower case, fully
	// qualified) that is still fresh.
	Delegation(zone string) (*Delegation, bool)
	// PutDelegation stores d for ttl. The caller does not change d after.
	PutDelegation(d *Delegation, ttl time.Duration)
	// Answer returns the answer stored for (name, qtype), name lower case;
	// the caller may change the message it gets.
	Answer(name string, qtype uint16) (*dns.Msg, bool)
	// PutAnswer stores m, an answer for (name, qtype), for ttl. The
	// caller does not change m after.
	PutAnswer(name string, qtype uint16, m *dns.Msg, ttl time.Duration)
}

// DefaultCacheEntries bounds a MemCache made with 0 entries.
const DefaultCacheEntries = 100000

// MemCache is the in-memory Cache: delegations and answers, at most
// max entries of each kind; when full, an expired entry or else an
// arbitrary one makes room.
type MemCache struct {
	max int
	now func() time.Time

	mu          sync.Mutex
	delegations map[string]memEntry[*Delegation]
	answers     map[answerKey]memEntry[*dns.Msg]
}

type answerKey struct {
	name  string
	qtype uint16
}

type memEntry[T any] struct {
	v      T
	stored time.Time
	expire time.Time
}

// NewMemCache returns a MemCache of at most max entries of each kind
// (0: DefaultCacheEntries).
func NewMemCache(max int) *MemCache {
	if max <= 0 {
		max = DefaultCacheEntries
	}
	return &MemCache{
		max: max, now: time.Now,
		delegations: map[string]memEntry[*Delegation]{},
		answers:     map[answerKey]memEntry[*dns.Msg]{},
	}
}

// Delegation implements Cache.
func (c *MemCache) Delegation(zone string) (*Delegation, bool) {
	c.mu.Lock()
	e, ok := c.delegations[zone]
	c.mu.Unlock()
	if !ok || !c.now().Before(e.expire) {
		return nil, false
	}
	return e.v, true
}

// PutDelegation implements Cache.
func (c *MemCache) PutDelegation(d *Delegation, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	makeRoom(c.delegations, c.max, now)
	c.delegations[d.Zone] = memEntry[*Delegation]{v: d, stored: now, expire: now.Add(ttl)}
}

// Answer implements Cache. The TTLs of the copy returned are aged by the
// time the answer was held.
func (c *MemCache) Answer(name string, qtype uint16) (*dns.Msg, bool) {
	c.mu.Lock()
	e, ok := c.answers[answerKey{name, qtype}]
	c.mu.Unlock()
	now := c.now()
	if !ok || !now.Before(e.expire) {
		return nil, false
	}
	m := e.v.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Rrtype != dns.TypeOPT {
				h.Ttl -= min(h.Ttl, age)
			}
		}
	}
	return m, true
}

// PutAnswer implements Cache.
func (c *MemCache) PutAnswer(name string, qtype uint16, m *dns.Msg, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	makeRoom(c.answers, c.max, now)
	c.answers[answerKey{strings.ToLower(name), qtype}] = memEntry[*dns.Msg]{v: m, stored: now, expire: now.Add(ttl)}
}

// FlushAnswers forgets every answer held; delegations stay.
func (c *MemCache) FlushAnswers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.answers)
}

// Len returns how many delegations and answers c holds, expired or not.
func (c *MemCache) Len() (delegations, answers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.delegations), len(c.answers)
}

// makeRoom deletes from m, when it holds max entries, the expired ones
// among a few looked at, or else one of them.
func makeRoom[K comparable, T any](m map[K]memEntry[T], max int, now time.Time) {
	if len(m) < max {
		return
	}
	looked := 0
	var victim K
	for k, e := range m { // the map's order is random: a sample
		if !now.Before(e.expire) {
			delete(m, k)
		}
		victim = k
		if looked++; looked == 8 {
			break
		}
	}
	if len(m) >= max {
		delete(m, victim)
	}
}
