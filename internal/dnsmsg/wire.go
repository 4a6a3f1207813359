package dnsmsg

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// ErrWire is wrapped by every error about a malformed wire message.
var ErrWire = errors.New("dnsmsg: malformed message")

const headerSize = 12

// Stored is an answer laid out for the cache: packed with ID 0 and without
// its OPT record, every TTL already clamped, and the offset of each TTL field
// recorded so that a reply is made by copying and patching (see AppendReply).
type Stored struct {
	Msg     []byte
	Offsets []uint16
}

// Prepare packs m for the cache. The stored answer is a recursive
// server's, RA set, and keeps m's AA: the resolvers of shardns set AA only
// on answers from their own local zones (forwarded answers never carry
// it), and a copy of the server's own zone data served from its cache
// stays authoritative, as Unbound serves its local data. When cacheable is true every TTL is raised
// to minTTL and capped at ttl (the entry's lifetime), so no reply built from
// the entry can show a TTL longer than the entry has left. Otherwise TTLs are
// left as they are, except that values with the top bit set become 0. m is
// not modified.
func Prepare(m *dns.Msg, ttl, minTTL uint32, cacheable bool) (Stored, error) {
	c := *m
	c.Id = 0
	c.Compress = true
	c.RecursionAvailable = true
	c.Extra = withoutOPT(m.Extra)
	wire, err := c.Pack()
	if err != nil {
		return Stored{}, fmt.Errorf("dnsmsg: pack answer: %w", err)
	}
	offs, err := TTLOffsets(wire)
	if err != nil {
		return Stored{}, err
	}
	for _, o := range offs {
		v := ttlValue(binary.BigEndian.Uint32(wire[o:]))
		if cacheable {
			v = min(max(v, minTTL), ttl)
		}
		binary.BigEndian.PutUint32(wire[o:], v)
	}
	return Stored{Msg: wire, Offsets: offs}, nil
}

func withoutOPT(extra []dns.RR) []dns.RR {
	out := make([]dns.RR, 0, len(extra))
	for _, rr := range extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// TTLOffsets walks a packed message and returns the offset of the TTL field
// of every resource record, OPT records excluded (their TTL field holds
// flags). It fails on a message whose counts or lengths do not add up.
func TTLOffsets(msg []byte) ([]uint16, error) {
	if len(msg) < headerSize || len(msg) > 0xffff {
		return nil, fmt.Errorf("%w: length %d", ErrWire, len(msg))
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	off := headerSize
	var err error
	for i := 0; i < qd; i++ {
		if off, err = skipName(msg, off); err != nil {
			return nil, err
		}
		off += 4
	}
	offs := make([]uint16, 0, rrs)
	for i := 0; i < rrs; i++ {
		if off, err = skipName(msg, off); err != nil {
			return nil, err
		}
		if off+10 > len(msg) {
			return nil, fmt.Errorf("%w: record header past the end", ErrWire)
		}
		if binary.BigEndian.Uint16(msg[off:]) != dns.TypeOPT {
			offs = append(offs, uint16(off+4))
		}
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
	}
	if off > len(msg) {
		return nil, fmt.Errorf("%w: record data past the end", ErrWire)
	}
	return offs, nil
}

// skipName returns the offset just past the domain name at off.
func skipName(msg []byte, off int) (int, error) {
	for {
		if off >= len(msg) {
			return 0, fmt.Errorf("%w: name past the end", ErrWire)
		}
		b := int(msg[off])
		switch b & 0xC0 {
		case 0x00:
			if b == 0 {
				return off + 1, nil
			}
			off += 1 + b
		case 0xC0:
			if off+2 > len(msg) {
				return 0, fmt.Errorf("%w: pointer past the end", ErrWire)
			}
			return off + 2, nil
		default:
			return 0, fmt.Errorf("%w: label type %#x", ErrWire, b&0xC0)
		}
	}
}
