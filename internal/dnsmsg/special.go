package dnsmsg

import "github.com/miekg/dns"

// LocalAnswer answers the questions a cache answers itself instead of
// looking them up, with a sentence saying why; nil for every other
// question. dnsd and cacheapi both use it, so the two agree:
//
//   - ANY: one synthesized HINFO "RFC8482" (RFC 8482 §4.2), not everything;
//   - AXFR, IXFR: REFUSED, EDE 21: a cache holds no zones to transfer;
//   - OPT, MAILA, MAILB, TSIG, TKEY: FORMERR, EDE 21: meta and obsolete
//     types that are not questions about data.
func LocalAnswer(r *dns.Msg, q *Query) (*dns.Msg, string) {
	switch q.Type {
	case dns.TypeANY:
		m := ErrorReply(r, dns.RcodeSuccess, 0, "")
		m.Answer = []dns.RR{&dns.HINFO{
			Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeHINFO, Class: q.Class, Ttl: 3600},
			Cpu: "RFC8482",
		}}
		return m, "ANY is answered with a synthesized HINFO (RFC 8482)"
	case dns.TypeAXFR, dns.TypeIXFR:
		const text = "zone transfers are not served by a cache"
		return ErrorReply(r, dns.RcodeRefused, dns.ExtendedErrorCodeNotSupported, text), text
	case dns.TypeOPT, dns.TypeMAILA, dns.TypeMAILB, dns.TypeTSIG, dns.TypeTKEY:
		text := "meta type " + TypeString(q.Type) + " is not a question"
		return ErrorReply(r, dns.RcodeFormatError, dns.ExtendedErrorCodeNotSupported, text), text
	}
	return nil, ""
}
