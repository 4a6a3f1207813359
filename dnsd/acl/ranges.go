package acl

import (
	"encoding/binary"
	"math"
	"net/netip"
)

// range4 is an inclusive range of IPv4 addresses.
type range4 struct{ first, last uint32 }

// u128 is an IPv6 address as two big-endian halves.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

// next returns a+1 and whether it did not overflow.
func (a u128) next() (u128, bool) {
	if a.lo != math.MaxUint64 {
		return u128{a.hi, a.lo + 1}, true
	}
	return u128{a.hi + 1, 0}, a.hi != math.MaxUint64
}

// range6 is an inclusive range of IPv6 addresses.
type range6 struct{ first, last u128 }

func prefixRange4(p netip.Prefix) range4 {
	b := p.Addr().As4()
	first := binary.BigEndian.Uint32(b[:])
	return range4{first, first | math.MaxUint32>>p.Bits()} // Go shifts by 32 give 0
}

func prefixRange6(p netip.Prefix) range6 {
	b := p.Addr().As16()
	first := u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
	bits := p.Bits()
	last := u128{
		first.hi | math.MaxUint64>>min(bits, 64), // shifts by 64 give 0
		first.lo | math.MaxUint64>>max(bits-64, 0),
	}
	return range6{first, last}
}

// appendRange4 appends r to sorted disjoint rs, merging it with the last
// range when they touch.
func appendRange4(rs []range4, r range4) []range4 {
	if n := len(rs); n > 0 && rs[n-1].last != math.MaxUint32 && rs[n-1].last+1 == r.first {
		rs[n-1].last = r.last
		return rs
	}
	return append(rs, r)
}

// appendRange6 is appendRange4 for IPv6.
func appendRange6(rs []range6, r range6) []range6 {
	if n := len(rs); n > 0 {
		if nx, ok := rs[n-1].last.next(); ok && nx == r.first {
			rs[n-1].last = r.last
			return rs
		}
	}
	return append(rs, r)
}

// contains4 reports whether x lies in one of the sorted disjoint ranges.
func contains4(rs []range4, x uint32) bool {
	// Find the first range starting after x; the one before it is the
	// only candidate.
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rs[m].first <= x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && x <= rs[lo-1].last
}

// contains6 is contains4 for IPv6.
func contains6(rs []range6, x u128) bool {
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !x.less(rs[m].first) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && !rs[lo-1].last.less(x)
}
