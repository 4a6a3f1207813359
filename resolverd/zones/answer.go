package zones

import (
	"github.com/miekg/dns"
)

// maxChase bounds the CNAME links followed for one answer.
const maxChase = 12

// Answer answers q from the loaded zones. It returns false when q is not a
// standard query with one question whose name lies inside a loaded zone of
// its class; the caller then resolves it elsewhere.
//
// The reply has q's ID, question (as asked), opcode, RD and CD; AA is set
// (except for a referral) and RA is left clear for the caller to decide. An
// OPT record is added when q has one. A CNAME is followed inside the loaded
// zones; when its target lies outside them, at a delegation, or the chain
// loops or is too long, the reply holds the chain so far with NOERROR and
// the caller may continue from the last target.
func (a *Authority) Answer(q *dns.Msg) (*dns.Msg, bool) {
	if q == nil || q.Response || q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 {
		return nil, false
	}
	question := q.Question[0]
	key := canonical(question.Name)
	z := a.find(key)
	if z == nil || !classMatches(z, question.Qclass) {
		return nil, false
	}

	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	m.RecursionAvailable = false
	a.resolve(m, z, question.Name, key, question.Qtype)
	if opt := q.IsEdns0(); opt != nil {
		m.SetEdns0(1232, opt.Do())
	}
	return m, true
}

// classMatches reports whether a query of class c can be answered by z.
func classMatches(z *zone, c uint16) bool {
	return c == z.class || c == dns.ClassANY
}

// resolve fills m: the answer at name in z, following CNAMEs through the
// loaded zones.
func (a *Authority) resolve(m *dns.Msg, z *zone, name, key string, qtype uint16) {
	seen := map[string]bool{key: true}
	for depth := 0; ; depth++ {
		r := z.lookup(name, key, qtype)
		switch r.kind {
		case kindAnswer:
			m.Answer = append(m.Answer, r.rrs...)
			return
		case kindNoData:
			m.Ns = append(m.Ns, z.negativeSOA())
			return
		case kindNXDomain:
			m.Rcode = dns.RcodeNameError
			m.Ns = append(m.Ns, z.negativeSOA())
			return
		case kindReferral:
			if depth == 0 {
				m.Authoritative = false
				m.Ns = append(m.Ns, r.rrs...)
				m.Extra = append(m.Extra, r.glue...)
			}
			return // after a CNAME: a partial answer
		}
		// kindCNAME
		m.Answer = append(m.Answer, r.rrs...)
		name = r.rrs[0].(*dns.CNAME).Target
		key = canonical(name)
		if depth+1 >= maxChase || seen[key] {
			return
		}
		seen[key] = true
		if z = a.find(key); z == nil || !classMatches(z, m.Question[0].Qclass) {
			return // the target is outside the loaded zones
		}
	}
}
