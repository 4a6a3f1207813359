package dnsmsg

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// MaxUDPSize is the largest UDP reply shardns sends and the payload size it
// advertises in its OPT record (the DNS Flag Day 2020 value).
const MaxUDPSize = 1232

// Query is a validated client question with what a reply needs from it.
type Query struct {
	ID      uint16
	Name    string // as the client spelled it, fully qualified
	Type    uint16
	Class   uint16
	RD      bool
	AD      bool
	CD      bool
	EDNS    bool   // the query carried an OPT record
	DO      bool   // DNSSEC OK, from the OPT record
	UDPSize uint16 // the client's advertised payload size (0 without EDNS)
	Key     string // the cache key, see Key
}

// Reject is a query shardns answers with an error instead of a lookup.
type Reject struct {
	Rcode int    // e.g. dns.RcodeFormatError
	EDE   uint16 // Extended DNS Error info code (RFC 8914), with Text
	Text  string
}

// WellFormed reports whether req, which miekg/dns unpacked into r, holds
// what Unpack forgives, as a query must:
//   - every record its header counts (RFC 1035 §4.1.1): Unpack stops
//     quietly where the records run out;
//   - a first question with its QTYPE and QCLASS: Unpack reads missing
//     fields as 0;
//   - no compression pointer in the first name, which has no earlier name
//     to point to (RFC 1035 §4.1.4): Unpack follows one into the header.
func WellFormed(req []byte, r *dns.Msg) bool {
	for i, n := range []int{len(r.Question), len(r.Answer), len(r.Ns), len(r.Extra)} {
		if int(binary.BigEndian.Uint16(req[4+2*i:])) != n {
			return false
		}
	}
	if len(r.Question) == 0 {
		return true
	}
	off := headerSize
	for off < len(req) {
		switch c := int(req[off]); {
		case c == 0:
			return off+1+4 <= len(req)
		case c&0xC0 != 0: // a pointer, or a label type Unpack refused
			return false
		default:
			off += 1 + c
		}
	}
	return false
}

// ParseQuery validates r as a client query and extracts the Query. A nil
// Reject means the query may go to the lookup chain.
func ParseQuery(r *dns.Msg) (Query, *Reject) {
	if r.Opcode != dns.OpcodeQuery {
		return Query{}, &Reject{Rcode: dns.RcodeNotImplemented, EDE: dns.ExtendedErrorCodeNotSupported, Text: "opcode " + dns.OpcodeToString[r.Opcode] + " not supported"}
	}
	if len(r.Question) != 1 {
		return Query{}, &Reject{Rcode: dns.RcodeFormatError, EDE: dns.ExtendedErrorCodeOther, Text: "exactly one question required"}
	}
	q := r.Question[0]
	out := Query{
		ID:    r.Id,
		Name:  dns.Fqdn(q.Name),
		Type:  q.Qtype,
		Class: q.Qclass,
		RD:    r.RecursionDesired,
		AD:    r.AuthenticatedData,
		CD:    r.CheckingDisabled,
	}
	if misplacedOPT(r.Answer) || misplacedOPT(r.Ns) {
		return out, &Reject{Rcode: dns.RcodeFormatError, EDE: dns.ExtendedErrorCodeOther, Text: "OPT record outside the additional section"}
	}
	opts := 0
	for _, rr := range r.Extra {
		opt, ok := rr.(*dns.OPT)
		if !ok {
			continue
		}
		if opt.Hdr.Name != "." {
			return out, &Reject{Rcode: dns.RcodeFormatError, EDE: dns.ExtendedErrorCodeOther, Text: "OPT record not owned by the root"}
		}
		opts++
		out.EDNS = true
		out.DO = opt.Do()
		out.UDPSize = opt.UDPSize()
		if opt.Version() != 0 {
			return out, &Reject{Rcode: dns.RcodeBadVers, EDE: dns.ExtendedErrorCodeOther, Text: "only EDNS version 0 is supported"}
		}
	}
	if opts > 1 {
		return out, &Reject{Rcode: dns.RcodeFormatError, EDE: dns.ExtendedErrorCodeOther, Text: "more than one OPT record"}
	}
	if out.Type == 0 || out.Class == 0 {
		// Both values are reserved (RFC 6895 §3.1, §3.2): no data has them.
		return out, &Reject{Rcode: dns.RcodeFormatError, EDE: dns.ExtendedErrorCodeOther, Text: "QTYPE or QCLASS 0"}
	}
	if metaType(out.Type) {
		return out, &Reject{Rcode: dns.RcodeFormatError, EDE: dns.ExtendedErrorCodeNotSupported, Text: "meta type " + TypeString(out.Type) + " is not a question"}
	}
	if _, ok := dns.IsDomainName(out.Name); !ok {
		return out, &Reject{Rcode: dns.RcodeFormatError, EDE: dns.ExtendedErrorCodeOther, Text: "bad query name"}
	}
	out.Key = Key(out.Name, out.Type, out.Class, out.DO, out.CD)
	return out, nil
}

// metaType reports whether t lies in 128 to 248, the part of RFC 6895
// §3.1's range of QTYPEs and meta-TYPEs with no question behind it:
// NXNAME (128; RFC 9824 §3.5 wants FORMERR and no forwarding) and the
// unassigned rest. 249 to 255 (TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY)
// are answered by LocalAnswer.
func metaType(t uint16) bool { return 128 <= t && t <= 248 }

// misplacedOPT reports whether rrs, the answer or authority section of a
// query, hold an OPT record: RFC 6891 §6.1.1 allows one only in the
// additional section.
func misplacedOPT(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			return true
		}
	}
	return false
}

// ReplySize is the largest reply the client can take over UDP: 512 without
// EDNS, else its advertised size within [512, MaxUDPSize].
func (q *Query) ReplySize() int {
	if !q.EDNS {
		return dns.MinMsgSize
	}
	return min(max(int(q.UDPSize), dns.MinMsgSize), MaxUDPSize)
}
