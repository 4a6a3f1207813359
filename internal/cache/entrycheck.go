package cache

import (
	"encoding/binary"
	"fmt"

	"github.com/miekg/dns"
)

// What Decode checks, so that no value read from Redis is served unless it
// is an answer to its key's question that a client can parse: whoever can
// write to a shard (a misconfigured client, another application, someone
// on the network of an unauthenticated Redis) must not be able to make a
// frontend serve one name's records under another's question, a query as
// an answer, or bytes that do not parse.
//
//   - The entry is bound to its key: a version 1 entry holds its question,
//     which must be the key's name (ignoring case), type and class; a
//     version 3 entry, whose question is rebuilt from the key, carries a
//     32-bit tag of that question, which must be the key's. A version 2
//     entry carries no such tag and is refused.
//   - The header is a cached answer's: QR set, opcode QUERY, TC clear,
//     RCODE NOERROR, NXDOMAIN or SERVFAIL (the only ones the chain
//     stores), one question.
//   - The records parse: every name is labels of at most 63 octets ending
//     in the root or in a compression pointer to an earlier name (each
//     pointer strictly before the previous one, never into the header),
//     at most 255 octets in all; the names in the RDATA of the types that
//     may be compressed (RFC 3597 §4) follow the same rules and fill the
//     RDATA exactly, as do the four and sixteen octets of A and AAAA and
//     the layouts of TXT, SRV, NAPTR, RRSIG, DS, DNSKEY, CAA, TLSA and
//     SSHFP, all checked without allocating; the RDATA of any other type
//     is parsed by miekg/dns and must fill its length; no OPT record (the
//     reply adds its own); the counts of the header are the records there
//     are, and nothing follows the last one.
//   - A version 1 entry's TTL offsets are those of its records.

// The reasons an entry is refused, the label values of the rejected
// entries metric.
const (
	RejectVersion   = "version"   // an unknown layout, or version 2 (not bound to its key)
	RejectMalformed = "malformed" // the entry or its message does not parse
	RejectQuestion  = "question"  // the question is not the key's
	RejectHeader    = "header"    // flags or RCODE not those of a cached answer
)

// rejectReasons are every reason, for exporting each series at zero.
var rejectReasons = [...]string{RejectVersion, RejectMalformed, RejectQuestion, RejectHeader}

// CorruptError is the error Decode returns for bytes it will not serve. It
// wraps ErrCorrupt.
type CorruptError struct {
	Reason string // one of the Reject constants
	Detail string
}

func (e *CorruptError) Error() string {
	return ErrCorrupt.Error() + ": " + e.Reason + ": " + e.Detail
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corrupt(reason, format string, args ...any) error {
	return &CorruptError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// DNS header bits a stored answer is checked for.
const (
	flagQR     = 0x8000
	flagOpcode = 0x7800
	flagTC     = 0x0200
	flagRcode  = 0x000F
	maxName    = 255 // octets of a name in wire form
	maxPtrs    = 126 // compression pointers in one name, as miekg/dns allows
	minRR      = 11  // octets of the smallest record: root owner, fixed fields
)

// checkFlags checks the header flags of a stored answer.
func checkFlags(flags uint16) error {
	switch {
	case flags&flagQR == 0:
		return corrupt(RejectHeader, "QR clear: not a response")
	case flags&flagOpcode != 0:
		return corrupt(RejectHeader, "opcode %d", flags&flagOpcode>>11)
	case flags&flagTC != 0:
		return corrupt(RejectHeader, "truncated answer")
	}
	switch flags & flagRcode {
	case dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeServerFailure:
		return nil
	}
	return corrupt(RejectHeader, "rcode %d", flags&flagRcode)
}

// questionTag is the tag a version 3 entry carries: 32-bit FNV-1a of its
// question section in wire form (name lowercased, type, class).
func questionTag(q []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range q {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// equalFold reports whether two question sections in wire form are equal,
// ignoring ASCII case. Label lengths are at most 63, below 'A', so a
// byte-wise comparison compares them exactly.
func equalFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lowerByte(a[i]) != lowerByte(b[i]) {
			return false
		}
	}
	return true
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// checkName checks the name at off in msg (see the rules above) and
// returns the offset just past it where it is written.
func checkName(msg []byte, off int) (int, error) {
	end := -1 // past the name where it is written, once a pointer is followed
	low := off
	octets, ptrs := 0, 0
	for {
		if off >= len(msg) {
			return 0, corrupt(RejectMalformed, "name at %d runs past the end", low)
		}
		c := int(msg[off])
		switch c & 0xC0 {
		case 0x00:
			octets += 1 + c
			if octets > maxName {
				return 0, corrupt(RejectMalformed, "name longer than %d octets", maxName)
			}
			if c == 0 {
				if end < 0 {
					end = off + 1
				}
				return end, nil
			}
			off += 1 + c
		case 0xC0:
			if off+2 > len(msg) {
				return 0, corrupt(RejectMalformed, "pointer past the end")
			}
			target := (c&0x3F)<<8 | int(msg[off+1])
			if target < dnsHeaderLen || target >= low {
				return 0, corrupt(RejectMalformed, "compression pointer at %d to %d", off, target)
			}
			if ptrs++; ptrs > maxPtrs {
				return 0, corrupt(RejectMalformed, "too many compression pointers")
			}
			if end < 0 {
				end = off + 2
			}
			off, low = target, target
		default:
			return 0, corrupt(RejectMalformed, "label type %#x at %d", c&0xC0, off)
		}
	}
}

// checkRData checks the RDATA of a record of type t at msg[off:end]. The
// common types are checked in place, as a layout: fixed octets first,
// then character-strings, then names, then fixed octets again, filling
// the RDATA exactly or, for the types that end in opaque data (a digest,
// a key, a signature), leaving any rest.
func checkRData(msg []byte, t uint16, off, end int) error {
	var prefix, strs, names, suffix int
	var allStrs, rest bool
	switch t {
	case dns.TypeA:
		suffix = 4
	case dns.TypeAAAA:
		suffix = 16
	case dns.TypeNS, dns.TypeMD, dns.TypeMF, dns.TypeCNAME, dns.TypeMB, dns.TypeMG, dns.TypeMR, dns.TypePTR:
		names = 1
	case dns.TypeMINFO:
		names = 2
	case dns.TypeSOA:
		names, suffix = 2, 20
	case dns.TypeMX:
		prefix, names = 2, 1
	case dns.TypeTXT, dns.TypeSPF:
		allStrs = true
	case dns.TypeSRV:
		prefix, names = 6, 1
	case dns.TypeNAPTR:
		prefix, strs, names = 4, 3, 1
	case dns.TypeRRSIG:
		prefix, names, rest = 18, 1, true
	case dns.TypeDS, dns.TypeCDS, dns.TypeDNSKEY, dns.TypeCDNSKEY:
		prefix, rest = 4, true
	case dns.TypeCAA:
		prefix, strs, rest = 1, 1, true
	case dns.TypeTLSA:
		prefix, rest = 3, true
	case dns.TypeSSHFP:
		prefix, rest = 2, true
	case dns.TypeOPT:
		return corrupt(RejectMalformed, "OPT record stored")
	default:
		// The rarer types are parsed by miekg/dns, which costs
		// allocations: the RDATA must be what the type says it is and
		// fill its length exactly.
		h := dns.RR_Header{Rrtype: t, Rdlength: uint16(end - off)}
		if _, _, err := dns.UnpackRRWithHeader(h, msg[:end], off); err != nil {
			return corrupt(RejectMalformed, "RDATA of type %d: %v", t, err)
		}
		return nil
	}
	bad := func() error { return corrupt(RejectMalformed, "RDATA of type %d does not parse", t) }
	if end-off < prefix {
		return bad()
	}
	off += prefix
	for range strs {
		if off >= end {
			return bad()
		}
		if off += 1 + int(msg[off]); off > end {
			return bad()
		}
	}
	// Names are checked within the message (a pointer may point before
	// the RDATA) and must end inside the RDATA.
	for range names {
		next, err := checkName(msg[:end], off)
		if err != nil {
			return err
		}
		off = next
	}
	if allStrs {
		for off < end {
			off += 1 + int(msg[off])
		}
	}
	if off > end || end-off < suffix || (!rest && end-off != suffix) {
		return bad()
	}
	return nil
}

// checkRecords checks the n records of msg from off to the end. offs, of
// length n, gets the offset of each TTL field or, with compare set, is
// checked against them.
func checkRecords(msg []byte, off int, offs []uint16, compare bool) error {
	for i := range offs {
		var err error
		if off, err = checkName(msg, off); err != nil {
			return err
		}
		if off+10 > len(msg) {
			return corrupt(RejectMalformed, "record %d: header past the end", i)
		}
		t := binary.BigEndian.Uint16(msg[off:])
		ttlOff := off + 4
		rdEnd := off + 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
		if rdEnd > len(msg) {
			return corrupt(RejectMalformed, "record %d: RDATA past the end", i)
		}
		if err := checkRData(msg, t, off+10, rdEnd); err != nil {
			return err
		}
		if compare {
			if offs[i] != uint16(ttlOff) {
				return corrupt(RejectMalformed, "TTL offset %d is not record %d's (%d)", offs[i], i, ttlOff)
			}
		} else {
			offs[i] = uint16(ttlOff)
		}
		off = rdEnd
	}
	if off != len(msg) {
		return corrupt(RejectMalformed, "%d octets after the last record", len(msg)-off)
	}
	return nil
}

// recordCount is the number of records msg's header announces, checked
// against the octets left after the question (each record takes at least
// minRR), so that a lying count is refused before anything is allocated
// for it.
func recordCount(msg []byte, qend int) (int, error) {
	n := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	if n*minRR > len(msg)-qend {
		return 0, corrupt(RejectMalformed, "%d records announced in %d octets", n, len(msg)-qend)
	}
	return n, nil
}
