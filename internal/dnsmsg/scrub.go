package dnsmsg

import "github.com/miekg/dns"

// MaxChain bounds the CNAME and DNAME links Scrub follows through an answer
// section. The records of a longer chain are dropped past the limit, which
// leaves a partial answer the client may continue from.
const MaxChain = 16

// Scrubbed counts the records Scrub dropped from each section.
type Scrubbed struct {
	Answer, Authority, Additional int
}

// Total is the number of records dropped.
func (s Scrubbed) Total() int { return s.Answer + s.Authority + s.Additional }

// Scrub drops from m, the reply to the question q, every record unrelated
// to q, as Unbound's scrubber does, so that nothing an upstream adds about
// other names reaches a cache or a client:
//
//   - Answer: the RRset of q's type at q's name, or the CNAME and DNAME
//     chain from q's name and the RRset of q's type at its end. A CNAME
//     owned by the current name moves to its target; a DNAME owned by an
//     ancestor of it is kept with the CNAME synthesized from it (a CNAME
//     there with another target is dropped); at most MaxChain links, and a
//     link back to a name already in the chain ends it. For type CNAME, the
//     CNAME at q's name only; for type ANY, every record at q's name.
//   - Authority: for a negative answer (NXDOMAIN, or NOERROR without the
//     data) the SOA owned by the final name or an ancestor of it, and no
//     NS (as in Unbound: a negative answer needs none, and NS records
//     there are where poison is planted); otherwise (NOERROR only) one NS
//     RRset owned by a name of the chain or an ancestor, and for a
//     referral the DS at the NS owner; NSEC and NSEC3 owned within the
//     zone of the kept SOA or NS, or of the signer of a kept answer RRSIG
//     (a wildcard answer's proof).
//   - Additional: the OPT record, and the A and AAAA records of names that
//     kept records name (NS, MX, SRV and SVCB targets and the like).
//
// Everywhere an RRSIG stays when it covers a kept RRset of its section
// (same owner, type covered), and records of another class than q's (but
// OPT, whose class field is a size) are dropped.
//
// Scrub never adds or changes a record and keeps the order of those it
// keeps. It allocates nothing for a reply of up to 64 records with nothing
// to drop and no DNAME to follow; when it drops records it gives m new
// section slices and never writes the old ones, which may be shared. It
// returns the number of records dropped per section.
func Scrub(m *dns.Msg, q dns.Question) Scrubbed {
	if m == nil || clean(m, q) {
		return Scrubbed{}
	}
	var marks [64]bool
	an, ns, ex := len(m.Answer), len(m.Ns), len(m.Extra)
	keep := marks[:]
	if an+ns+ex > len(marks) {
		keep = make([]bool, an+ns+ex)
	}
	s := scrubber{q: q, m: m, an: keep[:an], ns: keep[an : an+ns], ex: keep[an+ns : an+ns+ex]}
	// q's name is passed, not read from s: storing through s a value read
	// from s would make the escape analysis move marks to the heap.
	s.answer(q.Name)
	s.authority()
	s.additional()
	return Scrubbed{
		Answer:     filter(&m.Answer, s.an),
		Authority:  filter(&m.Ns, s.ns),
		Additional: filter(&m.Extra, s.ex),
	}
}

// clean reports whether m holds nothing Scrub would drop in the commonest
// shape of reply: only records of q's name and type (and their RRSIGs) in
// the answer, no authority, and nothing but OPT in the additional section.
func clean(m *dns.Msg, q dns.Question) bool {
	if len(m.Ns) != 0 {
		return false
	}
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			return false
		}
	}
	data, sigs := false, false
	for _, rr := range m.Answer {
		h := rr.Header()
		if !classOK(q, h) || !EqualNames(h.Name, q.Name) {
			return false
		}
		switch {
		case q.Qtype == dns.TypeANY, h.Rrtype == q.Qtype:
			data = true
		case h.Rrtype == dns.TypeRRSIG && rr.(*dns.RRSIG).TypeCovered == q.Qtype:
			sigs = true
		default:
			return false
		}
	}
	return data || !sigs // an RRSIG stays only beside the RRset it covers
}

// scrubber holds one Scrub's state. an, ns and ex mark the records of each
// section that stay. It keeps no lists of its own (RRSIGs and additional
// names are matched against the marked records), so it lives on the stack.
type scrubber struct {
	q          dns.Question
	m          *dns.Msg
	an, ns, ex []bool

	chain        [MaxChain + 1]string // the names of the answer's chain, q's name first
	links        int                  // names in chain after q's
	answered     bool                 // the data (q's type) was found at the chain's end
	soa, nsOwner string               // owners of the SOA and NS RRsets kept
}

// final is the last name of the chain: where the data or the negative
// answer is.
func (s *scrubber) final() string { return s.chain[s.links] }

// answer marks the answer section's chain from qname and its data, then
// their RRSIGs.
func (s *scrubber) answer(qname string) {
	s.chain[0] = qname
	name := qname
	for {
		if s.markData(name) {
			s.answered = true
			break
		}
		if s.q.Qtype == dns.TypeCNAME || s.q.Qtype == dns.TypeANY || s.links == MaxChain {
			break
		}
		next, applies := s.followDNAME(name)
		if !applies {
			next = s.followCNAME(name)
		}
		if next == "" || s.inChain(next) {
			break // the end of the chain, or a loop
		}
		s.links++
		s.chain[s.links] = next
		name = next
	}
	s.markSigs(s.m.Answer, s.an)
}

// markData marks the records of q's type (any type for ANY) at name and
// reports whether there were any.
func (s *scrubber) markData(name string) bool {
	found := false
	for i, rr := range s.m.Answer {
		h := rr.Header()
		if (s.q.Qtype == dns.TypeANY || h.Rrtype == s.q.Qtype) && classOK(s.q, h) && EqualNames(h.Name, name) {
			s.an[i] = true
			found = true
		}
	}
	return found
}

// followDNAME marks the first DNAME owned by a proper ancestor of name and
// the CNAME at name synthesized from it, and returns the synthesized
// target; applies is false when no DNAME is above name. A DNAME whose
// substitution overflows a name (YXDOMAIN) stays, and ends the chain
// (target "").
func (s *scrubber) followDNAME(name string) (target string, applies bool) {
	for i, rr := range s.m.Answer {
		d, ok := rr.(*dns.DNAME)
		if !ok || !classOK(s.q, &d.Hdr) || !properSubdomain(name, d.Hdr.Name) {
			continue
		}
		s.an[i] = true
		target, ok := synthesize(name, d.Hdr.Name, d.Target)
		if !ok {
			return "", true
		}
		for j, rr := range s.m.Answer {
			if c, ok := rr.(*dns.CNAME); ok && classOK(s.q, &c.Hdr) && EqualNames(c.Hdr.Name, name) && EqualNames(c.Target, target) {
				s.an[j] = true
				break
			}
		}
		return target, true
	}
	return "", false
}

// followCNAME marks the first CNAME owned by name and returns its target,
// or "" when there is none. A CNAME RRset holds one record; others beside
// it are dropped.
func (s *scrubber) followCNAME(name string) string {
	for i, rr := range s.m.Answer {
		if c, ok := rr.(*dns.CNAME); ok && classOK(s.q, &c.Hdr) && EqualNames(c.Hdr.Name, name) {
			s.an[i] = true
			return c.Target
		}
	}
	return ""
}

// inChain reports whether name is already a name of the chain.
func (s *scrubber) inChain(name string) bool {
	for _, c := range s.chain[:s.links+1] {
		if EqualNames(c, name) {
			return true
		}
	}
	return false
}

// markSigs marks the RRSIGs in rrs that cover a kept RRset of rrs: a
// marked record, not itself an RRSIG, of the same owner and the type
// covered.
func (s *scrubber) markSigs(rrs []dns.RR, keep []bool) {
	for i, rr := range rrs {
		sig, ok := rr.(*dns.RRSIG)
		if !ok || keep[i] || !classOK(s.q, &sig.Hdr) {
			continue
		}
		for j, c := range rrs {
			h := c.Header()
			if keep[j] && h.Rrtype == sig.TypeCovered && h.Rrtype != dns.TypeRRSIG && EqualNames(h.Name, sig.Hdr.Name) {
				keep[i] = true
				break
			}
		}
	}
}

// authority marks the SOA of a negative answer, or the NS RRset (and DS of
// a referral), the NSEC and NSEC3 records of the zones these name, and the
// RRSIGs over what stays.
func (s *scrubber) authority() {
	rcode := s.m.Rcode
	if rcode == dns.RcodeNameError || (rcode == dns.RcodeSuccess && !s.answered) {
		final := s.final()
		for i, rr := range s.m.Ns {
			h := rr.Header()
			if h.Rrtype == dns.TypeSOA && classOK(s.q, h) && subdomain(final, h.Name) {
				s.ns[i] = true // one record: an SOA RRset has no other
				s.soa = h.Name
				break
			}
		}
	}
	negative := s.soa != "" || rcode == dns.RcodeNameError
	if rcode == dns.RcodeSuccess && !negative {
		for _, rr := range s.m.Ns {
			h := rr.Header()
			if h.Rrtype == dns.TypeNS && classOK(s.q, h) && s.aboveChain(h.Name) {
				s.nsOwner = h.Name
				break
			}
		}
	}
	if s.nsOwner != "" {
		referral := !s.answered
		for i, rr := range s.m.Ns {
			h := rr.Header()
			if (h.Rrtype == dns.TypeNS || (referral && h.Rrtype == dns.TypeDS)) && classOK(s.q, h) && EqualNames(h.Name, s.nsOwner) {
				s.ns[i] = true
			}
		}
	}
	if rcode == dns.RcodeSuccess || rcode == dns.RcodeNameError {
		for i, rr := range s.m.Ns {
			h := rr.Header()
			if (h.Rrtype == dns.TypeNSEC || h.Rrtype == dns.TypeNSEC3) && classOK(s.q, h) && s.inZone(h.Name) {
				s.ns[i] = true
			}
		}
	}
	s.markSigs(s.m.Ns, s.ns)
}

// aboveChain reports whether owner is a name of the chain or an ancestor of
// one.
func (s *scrubber) aboveChain(owner string) bool {
	for _, c := range s.chain[:s.links+1] {
		if subdomain(c, owner) {
			return true
		}
	}
	return false
}

// inZone reports whether name lies within the zone of the kept SOA or NS,
// or of the signer of a kept answer RRSIG: the zone of a wildcard answer,
// whose proof that no closer name exists has no SOA or NS beside it.
func (s *scrubber) inZone(name string) bool {
	if (s.soa != "" && subdomain(name, s.soa)) || (s.nsOwner != "" && subdomain(name, s.nsOwner)) {
		return true
	}
	for i, rr := range s.m.Answer {
		if sig, ok := rr.(*dns.RRSIG); ok && s.an[i] && subdomain(sig.Hdr.Name, sig.SignerName) && subdomain(name, sig.SignerName) {
			return true
		}
	}
	return false
}

// additional marks the OPT record, the addresses of names the kept answer
// and authority records name, and the RRSIGs over those addresses.
func (s *scrubber) additional() {
	for i, rr := range s.m.Extra {
		h := rr.Header()
		switch h.Rrtype {
		case dns.TypeOPT:
			s.ex[i] = true
		case dns.TypeA, dns.TypeAAAA:
			s.ex[i] = classOK(s.q, h) && (named(s.m.Answer, s.an, h.Name) || named(s.m.Ns, s.ns, h.Name))
		}
	}
	s.markSigs(s.m.Extra, s.ex)
}

// named reports whether a record of rrs marked in keep names host.
func named(rrs []dns.RR, keep []bool, host string) bool {
	for i, rr := range rrs {
		if keep[i] && EqualNames(target(rr), host) {
			return true
		}
	}
	return false
}

// target is the host name rr names, whose addresses a server may add to
// the additional section (RFC 1035 §3.3, RFC 2782, RFC 9460); "" for
// records that name none.
func target(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.NS:
		return v.Ns
	case *dns.MX:
		return v.Mx
	case *dns.SRV:
		return v.Target
	case *dns.KX:
		return v.Exchanger
	case *dns.AFSDB:
		return v.Hostname
	case *dns.RT:
		return v.Host
	case *dns.NAPTR:
		return v.Replacement
	case *dns.MB:
		return v.Mb
	case *dns.MD:
		return v.Md
	case *dns.MF:
		return v.Mf
	case *dns.SVCB:
		return svcbTarget(v.Hdr.Name, v.Target)
	case *dns.HTTPS:
		return svcbTarget(v.Hdr.Name, v.Target)
	}
	return ""
}

// svcbTarget is the host of an SVCB or HTTPS record: its target, or its
// owner when the target is "." (RFC 9460 §2.5).
func svcbTarget(owner, target string) string {
	if target == "." {
		return owner
	}
	return target
}

// filter removes from *rrs the records not marked in keep and returns how
// many it removed. The kept records go to a new slice, so a slice shared
// with someone else (a zone's records) is never written.
func filter(rrs *[]dns.RR, keep []bool) int {
	n := 0
	for _, k := range keep {
		if !k {
			n++
		}
	}
	if n == 0 {
		return 0
	}
	var out []dns.RR
	if n < len(keep) {
		out = make([]dns.RR, 0, len(keep)-n)
		for i, rr := range *rrs {
			if keep[i] {
				out = append(out, rr)
			}
		}
	}
	*rrs = out
	return n
}

// classOK reports whether a record of class h.Class answers q.
func classOK(q dns.Question, h *dns.RR_Header) bool {
	return h.Class == q.Qclass || q.Qclass == dns.ClassANY
}

// subdomain reports whether name is parent or lies below it, ignoring ASCII
// case. Both are fully qualified, in miekg/dns's presentation form.
func subdomain(name, parent string) bool {
	if parent == "." {
		return true // every fully qualified name is at or below the root
	}
	if len(name) < len(parent) || !EqualNames(name[len(name)-len(parent):], parent) {
		return false
	}
	if len(name) == len(parent) {
		return true
	}
	i := len(name) - len(parent) - 1 // must be a label's final dot
	return name[i] == '.' && !escaped(name, i)
}

// properSubdomain reports whether name lies below parent, not at it.
func properSubdomain(name, parent string) bool {
	return subdomain(name, parent) && !EqualNames(name, parent)
}

// escaped reports whether s[i] is escaped: preceded by an odd number of
// backslashes.
func escaped(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// synthesize is the target of the CNAME a DNAME at owner synthesizes for
// name (RFC 6672 §2.2): name's labels below owner followed by target. It
// fails when the result is no valid name (over 255 octets: YXDOMAIN).
func synthesize(name, owner, target string) (string, bool) {
	prefix := name // every label of name, when owner is the root
	if owner != "." {
		prefix = name[:len(name)-len(owner)]
	}
	out := prefix
	if target != "." {
		out += target
	}
	if _, ok := dns.IsDomainName(out); !ok || !dns.IsFqdn(out) {
		return "", false
	}
	return out, true
}
