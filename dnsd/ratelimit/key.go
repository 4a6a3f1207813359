package ratelimit

import (
	"encoding/binary"
	"net/netip"
)

// key is a masked client prefix as a 128-bit IPv6 address; IPv4 prefixes
// are stored IPv4-mapped (::ffff:a.b.c.0), which no IPv6 client can
// produce since keyOf unmaps first.
type key struct{ hi, lo uint64 }

// keyOf masks addr to its bucket's prefix. Zones are ignored; the zero
// Addr gets the all-zero key.
func (l *limits) keyOf(addr netip.Addr) key {
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		return key{lo: 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:])&l.mask4)}
	}
	b := addr.As16()
	return key{
		hi: binary.BigEndian.Uint64(b[:8]) & l.mask6.hi,
		lo: binary.BigEndian.Uint64(b[8:]) & l.mask6.lo,
	}
}

// hash mixes k with a per-Limiter seed (so outsiders cannot aim many
// prefixes at one shard) using the splitmix64 finalizer.
func (k key) hash(seed uint64) uint64 {
	x := k.hi*0x9e3779b97f4a7c15 ^ k.lo ^ seed
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
