package redisstate

import (
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/resolverd/recurse"
)

// Layered is recurse.Cache in two tiers: the in-memory front first, the
// shared Store under it. A front miss reads the Store (a Redis failure
// is a miss); what the Store gives is copied into the front for the time
// it has left. Puts go to both, the Store's without waiting.
type Layered struct {
	front recurse.Cache
	back  *Store
}

var _ recurse.Cache = (*Layered)(nil)

// NewLayered returns front over back.
func NewLayered(front recurse.Cache, back *Store) *Layered {
	return &Layered{front: front, back: back}
}

// Delegation implements recurse.Cache.
func (l *Layered) Delegation(zone string) (*recurse.Delegation, bool) {
	if d, ok := l.front.Delegation(zone); ok {
		return d, true
	}
	d, left, ok := l.back.delegation(zone)
	if !ok {
		return nil, false
	}
	l.front.PutDelegation(d, left)
	return d, true
}

// PutDelegation implements recurse.Cache.
func (l *Layered) PutDelegation(d *recurse.Delegation, ttl time.Duration) {
	l.front.PutDelegation(d, ttl)
	l.back.PutDelegation(d, ttl)
}

// Answer implements recurse.Cache.
func (l *Layered) Answer(name string, qtype uint16) (*dns.Msg, bool) {
	if m, ok := l.front.Answer(name, qtype); ok {
		return m, true
	}
	m, left, ok := l.back.answer(name, qtype)
	if !ok {
		return nil, false
	}
	l.front.PutAnswer(name, qtype, m.Copy(), left)
	return m, true
}

// PutAnswer implements recurse.Cache.
func (l *Layered) PutAnswer(name string, qtype uint16, m *dns.Msg, ttl time.Duration) {
	l.front.PutAnswer(name, qtype, m, ttl)
	l.back.PutAnswer(name, qtype, m, ttl)
}

// SetDNSSEC implements recurse.DNSSECAware: the front forgets its answers
// (if it can) and the Store reads and writes under the keys of the new
// mode.
func (l *Layered) SetDNSSEC(on bool) {
	if f, ok := l.front.(recurse.AnswerFlusher); ok {
		f.FlushAnswers()
	}
	l.back.SetDNSSEC(on)
}
