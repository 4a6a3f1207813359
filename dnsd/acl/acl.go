// Package acl decides which clients may query dnsd (the -allow flag).
//
// An ACL is a set of IPv4 and IPv6 prefixes. Lookups are a binary search
// over sorted, disjoint address ranges: no allocation, no locks, safe for
// concurrent use once built.
package acl

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// ACL is an immutable set of allowed client prefixes. Build it with Parse.
// A nil *ACL allows nothing.
type ACL struct {
	// prefixes is the canonical form: masked, IPv4-mapped prefixes turned
	// into IPv4, sorted (IPv4 first), none contained in another.
	prefixes []netip.Prefix
	v4       []range4 // sorted, disjoint, adjacent ranges merged
	v6       []range6 // sorted, disjoint, adjacent ranges merged
}

// Allowed reports whether addr may query. IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) are unmapped first, so they match IPv4 prefixes. IPv6
// zones are ignored. The zero netip.Addr is never allowed. Allowed does
// not allocate.
func (a *ACL) Allowed(addr netip.Addr) bool {
	if a == nil || !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		return contains4(a.v4, binary.BigEndian.Uint32(b[:]))
	}
	b := addr.As16()
	return contains6(a.v6, u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])})
}

// String lists the ACL's prefixes in canonical form, comma separated, as
// Parse accepts them back. A nil *ACL prints as "none".
func (a *ACL) String() string {
	if a == nil {
		return "none"
	}
	var sb strings.Builder
	for i, p := range a.prefixes {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(p.String())
	}
	return sb.String()
}
