package dnsmsg

import (
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
	opts := 0
	for _, rr := range r.Extra {
		opt, ok := rr.(*dns.OPT)
		if !ok {
			continue
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
	if _, ok := dns.IsDomainName(out.Name); !ok {
		return out, &Reject{Rcode: dns.RcodeFormatError, EDE: dns.ExtendedErrorCodeOther, Text: "bad query name"}
	}
	out.Key = Key(out.Name, out.Type, out.Class, out.DO, out.CD)
	return out, nil
}

// ReplySize is the largest reply the client can take over UDP: 512 without
// EDNS, else its advertised size within [512, MaxUDPSize].
func (q *Query) ReplySize() int {
	if !q.EDNS {
		return dns.MinMsgSize
	}
	return min(max(int(q.UDPSize), dns.MinMsgSize), MaxUDPSize)
}

// Upstream returns the query shardns asks its resolver for q: the name
// lowercased (answers are cached for every spelling), RD set, CD and DO as
// the key records them, and EDNS with MaxUDPSize.
func (q *Query) Upstream() *dns.Msg {
	m := new(dns.Msg)
	m.Id = dns.Id()
	m.RecursionDesired = true
	m.CheckingDisabled = q.CD
	m.Question = []dns.Question{{Name: LowerName(q.Name), Qtype: q.Type, Qclass: q.Class}}
	m.SetEdns0(MaxUDPSize, q.DO)
	return m
}
