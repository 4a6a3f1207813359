package dnsmsg

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/miekg/dns"
)

// AppendUpstream appends to b the query shardns asks its resolver for q,
// packed with ID id: the name lowercased (answers are cached for every
// spelling, RFC 4343), RD set, CD as q has it, and an OPT record advertising
// MaxUDPSize with q's DO bit (CD and DO are part of the cache key). It
// grows b at most once.
func (q *Query) AppendUpstream(b []byte, id uint16) ([]byte, error) {
	start := len(b)
	// A name takes at most one octet more packed than written.
	b = slices.Grow(b, headerSize+min(len(q.Name)+1, maxNameWire)+4+optSize)
	var flags2, flags3 byte = 0x01, 0 // RD
	if q.CD {
		flags3 = 0x10
	}
	b = append(b, byte(id>>8), byte(id), flags2, flags3, 0, 1, 0, 0, 0, 0, 0, 1)
	name := b[len(b):cap(b)]
	n, err := dns.PackDomainName(q.Name, name, 0, nil, false)
	if err == nil && n > maxNameWire {
		err = fmt.Errorf("%d octets, over %d", n, maxNameWire)
	}
	if err != nil {
		return b[:start], fmt.Errorf("dnsmsg: pack query name %q: %w", q.Name, err)
	}
	// Lowercased packed, so that a letter written escaped (\065) is too.
	for i := 0; i < n; {
		l := int(name[i])
		for j := i + 1; j <= i+l; j++ {
			name[j] = lower(name[j])
		}
		i += 1 + l
	}
	b = b[:len(b)+n]
	b = binary.BigEndian.AppendUint16(b, q.Type)
	b = binary.BigEndian.AppendUint16(b, q.Class)
	var do byte
	if q.DO {
		do = 0x80
	}
	// The OPT record: root owner, TYPE 41, CLASS the payload size, TTL
	// extended RCODE 0, version 0 and the DO flag, no options.
	b = append(b, 0, 0, byte(dns.TypeOPT), byte(MaxUDPSize>>8), byte(MaxUDPSize&0xff), 0, 0, do, 0, 0, 0)
	return b, nil
}

// maxNameWire is the longest domain name in wire form (RFC 1035 §3.1).
const maxNameWire = 255

// optSize is the length of an OPT record without options.
const optSize = 11

// AnswersQuery reports whether ans, a packed message, answers q, the packed
// query it was sent for: the same ID and one question, with q's type,
// class and name (ignoring ASCII case). Neither first name may be
// compressed: there is nothing before it to point to.
func AnswersQuery(q, ans []byte) bool {
	if len(q) < headerSize || len(ans) < headerSize ||
		binary.BigEndian.Uint16(q) != binary.BigEndian.Uint16(ans) ||
		binary.BigEndian.Uint16(ans[4:]) != 1 {
		return false
	}
	off := headerSize
	for {
		if off >= len(q) || off >= len(ans) {
			return false
		}
		n := int(q[off])
		if n != int(ans[off]) || n > 63 || off+1+n > len(q) || off+1+n > len(ans) {
			return false
		}
		if n == 0 {
			off++
			break
		}
		for i := off + 1; i <= off+n; i++ {
			if lower(q[i]) != lower(ans[i]) {
				return false
			}
		}
		off += 1 + n
	}
	return off+4 <= len(q) && off+4 <= len(ans) && string(q[off:off+4]) == string(ans[off:off+4])
}
