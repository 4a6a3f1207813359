// Package acl decides which clients may query dnsd (the -allow flag).
//
// An ACL is a set of IPv4 and IPv6 prefixes. Lookups are a binary search
// over sorted, disjoint address ranges: no allocation, no locks, safe for
// concurrent use. Set replaces an ACL's prefixes while it is in use, so a
// reload reaches every listener that holds it.
package acl

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"sync/atomic"
)

// ACL is a set of allowed client prefixes. Build it with Parse. A nil
// *ACL allows nothing.
type ACL struct {
	set atomic.Pointer[set] // never nil once built
}

// set is one immutable list of prefixes and its lookup ranges.
type set struct {
	// prefixes is the canonical form: masked, IPv4-mapped prefixes turned
	// into IPv4, sorted (IPv4 first), none contained in another.
	prefixes []netip.Prefix
	v4       []range4 // sorted, disjoint, adjacent ranges merged
	v6       []range6 // sorted, disjoint, adjacent ranges merged
}

// Set makes a allow what b allows, at once for every holder of a: a
// lookup sees either the old prefixes or the new ones, never a mix. b is
// not changed and may be dropped.
func (a *ACL) Set(b *ACL) {
	a.set.Store(b.set.Load())
}

// Allowed reports whether addr may query. IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) are unmapped first, so they match IPv4 prefixes. IPv6
// zones are ignored. The zero netip.Addr is never allowed. Allowed does
// not allocate.
func (a *ACL) Allowed(addr netip.Addr) bool {
	if a == nil || !addr.IsValid() {
		return false
	}
	s := a.set.Load()
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		return contains4(s.v4, binary.BigEndian.Uint32(b[:]))
	}
	b := addr.As16()
	return contains6(s.v6, u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])})
}

// String lists the ACL's prefixes in canonical form, comma separated, as
// Parse accepts them back. A nil *ACL prints as "none".
func (a *ACL) String() string {
	if a == nil {
		return "none"
	}
	var sb strings.Builder
	for i, p := range a.set.Load().prefixes {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(p.String())
	}
	return sb.String()
}
