package dnsmsg

import (
	"bytes"
	"encoding/binary"

	"github.com/miekg/dns"
)

// StaleTTL is the TTL of a stale answer (RFC 8767 §4).
const StaleTTL = 30

// ReplyOptions says how a stored answer is turned into one reply.
type ReplyOptions struct {
	Age   uint32 // seconds since the answer was stored; subtracted from every TTL
	Stale bool   // serve-stale: every TTL becomes StaleTTL, with EDE 3
	// EDE and Text are an Extended DNS Error to attach; with both zero
	// none is (code 0, "Other Error", needs a text).
	EDE  uint16
	Text string
	// Cookie is the data of a COOKIE option (RFC 7873) to put in the OPT
	// record, when the query had EDNS; nil: none. It is only read.
	Cookie []byte
}

// AppendReply appends to dst the reply to q made from the stored answer s:
// the query's ID, its RD and CD bits (RFC 4035 §3.2.2: CD is copied from
// the query), its spelling of the name, TTLs aged by
// o.Age, AD cleared unless the client asked for it (RFC 6840 §5.8), and an
// OPT record (with any EDE) when the query had EDNS. s is not modified.
func AppendReply(dst []byte, s Stored, q *Query, o ReplyOptions) []byte {
	var buf [256]byte
	n, err := dns.PackDomainName(q.Name, buf[:], 0, nil, false)
	if err != nil {
		n = 0 // the stored spelling stays
	}
	return AppendReplyName(dst, s, q, buf[:n], o)
}

// AppendReplyName is AppendReply with the question name as the client
// sent it, in wire form (uncompressed), instead of q.Name: for a caller
// that read the query with ParseCommon.
func AppendReplyName(dst []byte, s Stored, q *Query, qname []byte, o ReplyOptions) []byte {
	start := len(dst)
	dst = append(dst, s.Msg...)
	msg := dst[start:]
	binary.BigEndian.PutUint16(msg, q.ID)
	msg[2] = msg[2]&^0x01 | boolBit(q.RD, 0x01)
	msg[3] = msg[3]&^0x10 | boolBit(q.CD, 0x10)
	if !q.DO && !q.AD {
		msg[3] &^= 0x20
	}
	patchQuestionCase(msg, qname)
	for _, off := range s.Offsets {
		v := binary.BigEndian.Uint32(msg[off:])
		switch {
		case o.Stale:
			v = StaleTTL
		case v > o.Age:
			v -= o.Age
		default:
			v = 0
		}
		binary.BigEndian.PutUint32(msg[off:], v)
	}
	if !q.EDNS {
		return dst
	}
	code, text, ede := o.EDE, o.Text, o.EDE != 0 || o.Text != ""
	if o.Stale && !ede {
		code, text, ede = dns.ExtendedErrorCodeStaleAnswer, "serving stale data", true
	}
	dst = appendOPT(dst, q.DO, 0, o.Cookie, ede, code, text)
	msg = dst[start:]
	binary.BigEndian.PutUint16(msg[10:], binary.BigEndian.Uint16(msg[10:])+1)
	return dst
}

// appendOPT appends an OPT record advertising MaxUDPSize, with the DO flag,
// the upper 8 bits of an extended RCODE, a COOKIE option when cookie is
// not nil and, when ede is set, one EDE option.
func appendOPT(dst []byte, do bool, extRcode uint8, cookie []byte, ede bool, code uint16, text string) []byte {
	rdlen := 0
	if cookie != nil {
		rdlen = 4 + len(cookie)
	}
	if ede {
		rdlen += 4 + 2 + len(text)
	}
	dst = append(dst, 0) // root owner name
	dst = binary.BigEndian.AppendUint16(dst, dns.TypeOPT)
	dst = binary.BigEndian.AppendUint16(dst, MaxUDPSize)
	dst = append(dst, extRcode, 0) // extended RCODE, version 0
	dst = binary.BigEndian.AppendUint16(dst, uint16(boolBit(do, 0x80))<<8)
	dst = binary.BigEndian.AppendUint16(dst, uint16(rdlen))
	if cookie != nil {
		dst = binary.BigEndian.AppendUint16(dst, dns.EDNS0COOKIE)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(cookie)))
		dst = append(dst, cookie...)
	}
	if ede {
		dst = binary.BigEndian.AppendUint16(dst, dns.EDNS0EDE)
		dst = binary.BigEndian.AppendUint16(dst, uint16(2+len(text)))
		dst = binary.BigEndian.AppendUint16(dst, code)
		dst = append(dst, text...)
	}
	return dst
}

// patchQuestionCase writes the client's spelling of the question name,
// name in wire form, over the stored one (RFC 1035 §7.3 and the 0x20
// practice: a reply echoes the question as asked). Names that differ other
// than in case are left alone.
func patchQuestionCase(msg, name []byte) {
	n := len(name)
	if binary.BigEndian.Uint16(msg[4:]) != 1 || n == 0 || headerSize+n > len(msg) {
		return
	}
	stored := msg[headerSize : headerSize+n]
	if bytes.Equal(stored, name) {
		return // the usual case: the client spelled it as stored
	}
	for i := range n {
		if lower(stored[i]) != lower(name[i]) {
			return
		}
	}
	copy(stored, name)
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

func boolBit(b bool, bit byte) byte {
	if b {
		return bit
	}
	return 0
}

// Fit makes a reply fit in size bytes. A reply that fits is returned as it
// is. A larger one first loses the records it may leave out without TC
// (see withoutOptional); if it still does not fit it is trimmed to whole
// records with TC set (RFC 2181 §9, RFC 1035 §4.2.1), so the client
// retries over TCP. The OPT record is kept either way.
func Fit(reply []byte, size int) []byte {
	if len(reply) <= size {
		return reply
	}
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		return truncatedHeader(reply)
	}
	if out, ok := withoutOptional(m, size); ok {
		return out
	}
	m.Truncate(size)
	m.Truncated = true
	out, err := m.Pack()
	if err != nil || len(out) > size {
		return truncatedHeader(reply)
	}
	return out
}

// withoutOptional packs m without the records RFC 2181 §9 lets a reply
// leave out with TC clear ("extra information"), if that fits in size: the
// additional section (its OPT record aside) and then, for an answer with
// records, the authority section, unless DNSSEC records there prove the
// answer (a wildcard's NSEC, say). A negative answer or a referral needs
// its authority section. Sections go whole: a partial RRset without TC
// would be taken as complete.
func withoutOptional(m *dns.Msg, size int) ([]byte, bool) {
	trimmed := *m
	trimmed.Compress = true
	trimmed.Extra = nil
	if opt := m.IsEdns0(); opt != nil {
		trimmed.Extra = []dns.RR{opt}
	}
	if out, err := trimmed.Pack(); err == nil && len(out) <= size {
		return out, true
	}
	if len(m.Answer) == 0 || len(m.Ns) == 0 || hasDNSSEC(m.Ns) {
		return nil, false
	}
	trimmed.Ns = nil
	if out, err := trimmed.Pack(); err == nil && len(out) <= size {
		return out, true
	}
	return nil, false
}

// hasDNSSEC reports whether rrs hold any RRSIG, NSEC or NSEC3 record.
func hasDNSSEC(rrs []dns.RR) bool {
	for _, rr := range rrs {
		switch rr.Header().Rrtype {
		case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
			return true
		}
	}
	return false
}

// truncatedHeader is the last resort of Fit: header and question only, TC set.
func truncatedHeader(reply []byte) []byte {
	end, err := skipName(reply, headerSize)
	if err != nil || end+4 > len(reply) {
		end = headerSize - 4
	}
	out := append([]byte(nil), reply[:end+4]...)
	out[2] |= 0x02
	binary.BigEndian.PutUint16(out[4:], uint16(boolBit(end+4 > headerSize, 1)))
	clear(out[6:12])
	return out
}

// ErrorReply builds the reply to r with rcode and, when the query had EDNS,
// an OPT record carrying the EDE code and text (none when both are zero).
// Flags are not copied from the query beyond what RFC 1035 requires (ID,
// opcode, RD, question) and, for a QUERY, CD (RFC 4035 §3.2.2).
func ErrorReply(r *dns.Msg, rcode int, ede uint16, text string) *dns.Msg {
	m := new(dns.Msg)
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.Rcode = rcode
	if r.Opcode == dns.OpcodeQuery {
		m.RecursionDesired = r.RecursionDesired
		m.CheckingDisabled = r.CheckingDisabled
		m.RecursionAvailable = true
		if len(r.Question) == 1 {
			m.Question = r.Question
		}
	}
	if opt := r.IsEdns0(); opt != nil || rcode > 0xF {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(MaxUDPSize)
		o.SetVersion(0)
		if opt != nil && opt.Do() {
			o.SetDo()
		}
		if ede != 0 || text != "" {
			o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: ede, ExtraText: text})
		}
		m.Extra = append(m.Extra, o)
	}
	return m
}
