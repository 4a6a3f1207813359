package dnsmsg

import (
	"encoding/binary"
	"strconv"

	"github.com/miekg/dns"
)

// MaxKeyLen bounds the length of a key ParseCommon writes: the prefix, a
// name of 255 octets in text, the longest type and class and both flags.
const MaxKeyLen = len("dns:{}:") + 255 + len("TYPE65535:IN:do:cd")

// The EDNS options ParseCommon accepts in a query: those that miekg/dns
// unpacks without checking their contents, so a query holding them parses
// there exactly when it parses here.
const (
	optCookie  = 10 // RFC 7873
	optPadding = 12 // RFC 7830
)

// ParseCommon reads req without unpacking it, when req is a query of the
// shape nearly every client sends: a standard query (no flags but RD, AD
// and CD), one question of class IN whose name is plain letters, digits,
// '-', '_' and '*', no answer or authority records, and at most one
// additional record, an EDNS version 0 OPT with no options but cookies and
// padding, nothing after it.
//
// For such a query it fills q as ParseQuery would, except Name and Key,
// appends q's cache key (exactly what Key returns) to key, and returns it
// with the offset where the question name ends: req[12:end] is the name as
// the client sent it, for AppendReplyName. Every other message, valid or
// not, gives ok false, and nothing is said about it: it is for
// dns.Msg.Unpack and ParseQuery to read. So is a query for a type answered
// without a lookup (see LocalAnswer), or with QTYPE 0.
func ParseCommon(req []byte, q *Query, key []byte) (_ []byte, end int, ok bool) {
	if len(req) < headerSize+1+4 || req[2]&^0x01 != 0 || req[3]&^0x30 != 0 {
		return key, 0, false // QR, opcode, AA, TC, RA, Z or RCODE set
	}
	if binary.BigEndian.Uint16(req[4:]) != 1 || binary.BigEndian.Uint32(req[6:]) != 0 {
		return key, 0, false
	}
	arcount := binary.BigEndian.Uint16(req[10:])
	if arcount > 1 {
		return key, 0, false
	}
	key = append(key, "dns:{"...)
	off := headerSize
	for {
		if off >= len(req) {
			return key, 0, false
		}
		n := int(req[off])
		if n == 0 {
			break
		}
		// Longer labels are pointers or obsolete label types; names
		// over 255 octets fail in miekg/dns too.
		if n > 63 || off+1+n >= len(req) || off+1+n-headerSize >= 255 {
			return key, 0, false
		}
		for _, b := range req[off+1 : off+1+n] {
			switch {
			case 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '_', b == '*':
			case 'A' <= b && b <= 'Z':
				b += 'a' - 'A'
			default:
				return key, 0, false // a byte written escaped in text
			}
			key = append(key, b)
		}
		key = append(key, '.')
		off += 1 + n
	}
	if off == headerSize {
		key = append(key, '.') // the root
	}
	off++ // the root label
	end = off
	if off+4 > len(req) {
		return key, 0, false
	}
	qtype := binary.BigEndian.Uint16(req[off:])
	if binary.BigEndian.Uint16(req[off+2:]) != dns.ClassINET || !lookedUp(qtype) {
		return key, 0, false
	}
	off += 4
	*q = Query{
		ID:    binary.BigEndian.Uint16(req),
		Type:  qtype,
		Class: dns.ClassINET,
		RD:    req[2]&0x01 != 0,
		AD:    req[3]&0x20 != 0,
		CD:    req[3]&0x10 != 0,
	}
	if arcount == 1 {
		if off, ok = readOPT(req, off, q); !ok {
			return key, 0, false
		}
	}
	if off != len(req) {
		return key, 0, false
	}
	key = append(key, "}:"...)
	key = appendType(key, qtype)
	key = append(key, ":IN"...)
	if q.DO {
		key = append(key, ":do"...)
	}
	if q.CD {
		key = append(key, ":cd"...)
	}
	return key, end, true
}

// CommonCookie returns the data of the first COOKIE option (RFC 7873) of
// req, a query ParseCommon accepted and said ended its name at end; found
// is false when it has none. The data aliases req; its length is not
// checked.
func CommonCookie(req []byte, end int) (data []byte, found bool) {
	// The question's type and class, then the OPT record's fixed part,
	// if the query has one (ParseCommon let nothing else follow).
	off := end + 4 + 11
	for off+4 <= len(req) {
		code := binary.BigEndian.Uint16(req[off:])
		n := int(binary.BigEndian.Uint16(req[off+2:]))
		off += 4
		if off+n > len(req) {
			return nil, false // ParseCommon refuses it: not reached
		}
		if code == optCookie {
			return req[off : off+n], true
		}
		off += n
	}
	return nil, false
}

// lookedUp reports whether a query for t goes to the lookup chain: not 0,
// not a meta type ParseQuery rejects, and not a type LocalAnswer answers.
func lookedUp(t uint16) bool {
	if metaType(t) {
		return false
	}
	switch t {
	case 0, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT,
		dns.TypeMAILA, dns.TypeMAILB, dns.TypeTSIG, dns.TypeTKEY:
		return false
	}
	return true
}

// readOPT reads the OPT record at off, the last of req, into q, and
// returns the offset past it.
func readOPT(req []byte, off int, q *Query) (int, bool) {
	// Owner (the root), TYPE, CLASS (the UDP size), extended RCODE,
	// version, flags, RDLENGTH.
	if off+11 > len(req) || req[off] != 0 || binary.BigEndian.Uint16(req[off+1:]) != dns.TypeOPT {
		return 0, false
	}
	if req[off+5] != 0 || req[off+6] != 0 {
		return 0, false // extended RCODE, or an EDNS version to refuse
	}
	q.EDNS = true
	q.UDPSize = binary.BigEndian.Uint16(req[off+3:])
	q.DO = req[off+7]&0x80 != 0
	rdlen := int(binary.BigEndian.Uint16(req[off+9:]))
	off += 11
	if off+rdlen != len(req) {
		return 0, false
	}
	for end := off + rdlen; off < end; {
		if off+4 > end {
			return 0, false
		}
		code := binary.BigEndian.Uint16(req[off:])
		off += 4 + int(binary.BigEndian.Uint16(req[off+2:]))
		if (code != optCookie && code != optPadding) || off > end {
			return 0, false
		}
	}
	return off, true
}

// appendType appends TypeString(t), the most asked types without a map
// lookup.
func appendType(key []byte, t uint16) []byte {
	switch t {
	case dns.TypeA:
		return append(key, "A"...)
	case dns.TypeAAAA:
		return append(key, "AAAA"...)
	case dns.TypeHTTPS:
		return append(key, "HTTPS"...)
	case dns.TypePTR:
		return append(key, "PTR"...)
	case dns.TypeMX:
		return append(key, "MX"...)
	case dns.TypeTXT:
		return append(key, "TXT"...)
	case dns.TypeNS:
		return append(key, "NS"...)
	case dns.TypeCNAME:
		return append(key, "CNAME"...)
	case dns.TypeSRV:
		return append(key, "SRV"...)
	}
	if s, ok := dns.TypeToString[t]; ok {
		return append(key, s...)
	}
	return strconv.AppendUint(append(key, "TYPE"...), uint64(t), 10)
}
