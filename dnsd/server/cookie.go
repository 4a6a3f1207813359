package server

import (
	"encoding/hex"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/cookie"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// queryCookie is a query's first COOKIE option (RFC 7873) and what the
// Issuer made of it. The zero value is a query without one, or a server
// with cookies off.
type queryCookie struct {
	opt []byte
	v   cookie.Verdict
}

// answerable reports whether a reply to the query carries a cookie: the
// query sent a well-formed one, and cookies are on.
func (qc queryCookie) answerable() bool { return qc.v != 0 && qc.v != cookie.Malformed }

// replyOption appends to dst the COOKIE option data of a reply to the
// query whose cookie was qc (answerable): its client cookie and a server
// cookie of ours for from.
func (s *Server) replyOption(dst []byte, qc queryCookie, from transport.Peer) []byte {
	return s.cookies.AppendReply(dst, qc.opt, qc.v, from.Addr.Addr())
}

// refused reports whether a query with verdict v gets BADCOOKIE over UDP:
// its server cookie is not ours, or no longer good (RFC 7873 §5.2.4, RFC
// 9018 §4.3). Over TCP it is answered, with a new cookie (§5.2.3).
func refused(v cookie.Verdict) bool {
	return v == cookie.Invalid || v == cookie.Expired || v == cookie.Future
}

// cookieOf reads r's first COOKIE option, sent by from.
func (s *Server) cookieOf(r *dns.Msg, from transport.Peer) queryCookie {
	if s.cookies == nil {
		return queryCookie{}
	}
	opt := r.IsEdns0()
	if opt == nil {
		return queryCookie{}
	}
	for _, o := range opt.Option {
		c, ok := o.(*dns.EDNS0_COOKIE)
		if !ok {
			continue
		}
		b, err := hex.DecodeString(c.Cookie)
		if err != nil {
			// miekg/dns wrote the octets it read in hex: not reached.
			return queryCookie{v: cookie.Malformed}
		}
		return queryCookie{opt: b, v: s.cookies.Check(b, from.Addr.Addr())}
	}
	return queryCookie{}
}

// withCookie adds to m, a reply to a query whose cookie was qc, the COOKIE
// option RFC 7873 §5.2 wants in it: the client cookie and a server cookie
// of ours. A reply without an OPT record, or to a query without a cookie
// or with a malformed one, is left as it is.
func (s *Server) withCookie(m *dns.Msg, qc queryCookie, from transport.Peer) *dns.Msg {
	if !qc.answerable() {
		return m
	}
	opt := m.IsEdns0()
	if opt == nil {
		return m
	}
	var buf [cookie.ReplyLen]byte
	data := s.replyOption(buf[:0], qc, from)
	opt.Option = append([]dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(data)}}, opt.Option...)
	return m
}

// commonCookie reads and judges the COOKIE option of req, a common query
// with EDNS and its name ending at nameEnd, with cookies on; the zero
// value when it has none. The option's octets stay in req.
func (s *Server) commonCookie(req []byte, nameEnd int, from transport.Peer) queryCookie {
	opt, found := dnsmsg.CommonCookie(req, nameEnd)
	if !found {
		return queryCookie{}
	}
	return queryCookie{opt: opt, v: s.cookies.Check(opt, from.Addr.Addr())}
}
