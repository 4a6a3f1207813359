package forward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// ednsSize is the EDNS0 UDP payload size advertised upstream (DNS flag day 2020).
const ednsSize = 1232

// errCaseMismatch reports a reply that matched the query in everything but
// the case of its question: a server that does not keep the case of names
// (RFC 4343 asks it to), or a forger who guessed the ID.
var errCaseMismatch = errors.New("forward: reply question differs from the query in case only")

// exchange sends one query to u and returns the answer shaped for the
// caller: q's ID and question, owner names spelt as in q's question, no
// OPT record if q had none, no COOKIE option, and AD cleared unless u is
// trusted.
//
// Over UDP the name goes out in random case (0x20) while u keeps case; a
// reply that differs from it in case only is not taken, and the query is
// sent again at once with the name as asked (see upstream.caseMismatch).
// A truncated UDP answer is asked again over TCP. BADCOOKIE with a fresh
// server cookie is retried once with it (RFC 7873 §5.3).
//
// The exchange ends with ctx or at limit, whichever comes first.
//
// raw, when not nil, is the answer's question and records packed: the
// reply's own bytes, when shaping it changed nothing but its header (see
// verbatim). Its header is the reply's: whoever passes raw on writes the
// answer's header over it (dnsmsg.PutHeader).
func (f *Forwarder) exchange(ctx context.Context, limit time.Time, u *upstream, q *dns.Msg) (resp *dns.Msg, raw []byte, err error) {
	o, addedOPT := f.prepare(q, u.noEDNS)
	defer f.release(o)
	m := &o.msg
	name := q.Question[0].Name
	use0x20 := u.proto == protoUDP && u.case0x20.Load() && hasLetter(name)
	cookieRetry := true
	for {
		m.Id = f.rnd.id()
		if !u.noEDNS {
			setCookie(m, u.cookieOption())
		}
		if use0x20 {
			m.Question[0].Name = f.rnd.randomCase(name)
		} else {
			m.Question[0].Name = name
		}
		resp, raw, err = f.send(ctx, limit, u, o, use0x20, name)
		if errors.Is(err, errCaseMismatch) {
			if u.caseMismatch() {
				f.log.Warn("forward: upstream does not keep the case of names; 0x20 turned off for it",
					"upstream", u.canon, "mismatches", caseOffAfter)
			}
			use0x20 = false
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if use0x20 {
			u.caseExact()
		}
		if resp.Rcode == dns.RcodeBadCookie {
			// match took the server cookie the reply carries.
			if cookieRetry {
				cookieRetry = false
				continue
			}
			return nil, nil, errors.New("forward: upstream answered BADCOOKIE to its own server cookie")
		}
		break
	}
	if !shape(resp, q, addedOPT, u.trusted) {
		raw = nil
	}
	return resp, raw, nil
}

// verbatim returns a copy of reply, a reply taken, when its bytes may be
// passed on as they are (dnsmsg.CheckVerbatim); else nil. The answer is
// then not packed anew, and says exactly what its parsed form says.
func verbatim(reply []byte) []byte {
	if dnsmsg.CheckVerbatim(reply) != nil {
		return nil
	}
	return append([]byte(nil), reply...)
}

// send sends o's message, m, to u once: over UDP with a retry over TCP
// when the answer is truncated, or over u's stream transport. With
// exactCase (UDP only), the reply must echo m's question byte for byte.
// name is the question's name as the caller wrote it.
func (f *Forwarder) send(ctx context.Context, limit time.Time, u *upstream, o *outQuery, exactCase bool, name string) (*dns.Msg, []byte, error) {
	m := &o.msg
	wire, err := m.PackBuffer(o.wire[:])
	if err != nil {
		return nil, nil, fmt.Errorf("forward: pack query: %w", err)
	}
	if u.proto != protoUDP {
		return f.exchangeStream(ctx, limit, u, m, wire)
	}
	var plain []byte
	if exactCase {
		// The name as the caller wrote it, in wire form: exchangeUDP puts
		// it in place of the echoed question before parsing the reply.
		n, err := dns.PackDomainName(name, o.plain[:], 0, nil, false)
		if err != nil {
			return nil, nil, fmt.Errorf("forward: pack query name: %w", err)
		}
		plain = o.plain[:n]
	}
	resp, raw, err := f.exchangeUDP(ctx, limit, u, m, wire, plain)
	if err != nil || !resp.Truncated {
		return resp, raw, err
	}
	// Over TCP 0x20 adds nothing (a forger would have to guess the
	// connection's sequence numbers): the name goes as the caller wrote it.
	if m.Question[0].Name != name {
		m = m.Copy()
		m.Question[0].Name = name
		if wire, err = m.Pack(); err != nil {
			return nil, nil, fmt.Errorf("forward: pack query: %w", err)
		}
	}
	return f.exchangeStream(ctx, limit, u, m, wire)
}

// shape turns resp, the reply to the copy of q sent upstream, into the
// answer to q. It reports whether it kept resp's question and records as
// they were, changing only its header.
func shape(resp, q *dns.Msg, addedOPT, trusted bool) (kept bool) {
	want := q.Question[0]
	kept = len(resp.Question) == 1 && resp.Question[0] == want
	if len(resp.Question) == 0 { // an error reply without it (see match)
		resp.Question = append(resp.Question, want)
	} else {
		resp.Question[0] = want
	}
	for _, sec := range [][]dns.RR{resp.Answer, resp.Ns, resp.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Name != want.Name && equalFoldASCII(h.Name, want.Name) {
				h.Name, kept = want.Name, false
			}
		}
	}
	resp.Id = q.Id
	if !trusted {
		// The upstream's word that it validated is worth what the path to
		// it is: nothing, unless it is authenticated or named as trusted.
		resp.AuthenticatedData = false
	}
	opt := resp.IsEdns0()
	switch {
	case opt == nil:
	case addedOPT:
		stripOPT(resp)
		kept = false
	default:
		// The cookie is between us and the upstream, not the client's.
		options := opt.Option[:0]
		for _, o := range opt.Option {
			if o.Option() != dns.EDNS0COOKIE {
				options = append(options, o)
			}
		}
		if len(options) != len(opt.Option) {
			kept = false
		}
		clear(opt.Option[len(options):])
		opt.Option = options
	}
	return kept
}

// outQuery is the query sent upstream for one Exchange, with the storage
// of its parts: taken from and given back to the Forwarder's pool, so a
// query costs no allocation for its message, OPT record, packed form or
// name. It lives from prepare to release; nothing returned to the caller
// points into it.
type outQuery struct {
	msg      dns.Msg
	question [1]dns.Question
	extra    [1]dns.RR // the OPT record, when q has no other additional record
	opt      dns.OPT
	options  [1]dns.EDNS0 // the COOKIE option
	wire     [512]byte    // the packed query (PackBuffer allocates when it does not fit)
	plain    [256]byte    // the question's name as asked, in wire form (at most 255 bytes)
}

// prepare returns the query to send for q: q's header (as a query) and
// question, q's other records shared read-only, and an EDNS0 OPT record of
// ednsSize bytes that keeps q's DO bit in place of q's own. Options from
// the client's OPT are hop-by-hop and are not forwarded. addedOPT reports
// that q had no OPT. With noEDNS the query goes without any OPT record
// (for a server that does not take EDNS). The caller gives o back with
// release.
func (f *Forwarder) prepare(q *dns.Msg, noEDNS bool) (o *outQuery, addedOPT bool) {
	o = f.queries.Get().(*outQuery)
	m := &o.msg
	m.MsgHdr = q.MsgHdr
	m.Response = false
	m.Compress = q.Compress
	o.question[0] = q.Question[0]
	m.Question = o.question[:]
	m.Answer, m.Ns = q.Answer, q.Ns
	do := false
	if opt := q.IsEdns0(); opt != nil {
		do = opt.Do()
	} else {
		addedOPT = true
	}
	o.opt = dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}, Option: o.options[:0]}
	o.opt.SetUDPSize(ednsSize)
	if do {
		o.opt.SetDo()
	}
	m.Extra = o.extra[:0]
	for _, rr := range q.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			m.Extra = append(m.Extra, rr) // a copy once q has any: o.extra is one long
		}
	}
	if !noEDNS {
		m.Extra = append(m.Extra, &o.opt)
	}
	return o, addedOPT
}

// release gives o back to the pool, holding on to nothing of the query.
func (f *Forwarder) release(o *outQuery) {
	o.msg = dns.Msg{}
	o.question = [1]dns.Question{}
	o.extra = [1]dns.RR{}
	o.opt = dns.OPT{}
	o.options = [1]dns.EDNS0{}
	f.queries.Put(o)
}

// setCookie puts c, a COOKIE option, in m's OPT record (made by prepare).
func setCookie(m *dns.Msg, c *dns.EDNS0_COOKIE) {
	opt := m.IsEdns0()
	for i, o := range opt.Option {
		if o.Option() == dns.EDNS0COOKIE {
			opt.Option[i] = c
			return
		}
	}
	opt.Option = append(opt.Option, c)
}

// stripOPT removes every OPT record from m's additional section.
func stripOPT(m *dns.Msg) {
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	clear(m.Extra[len(extra):])
	m.Extra = extra
}

// verdict is what match makes of a reply.
type verdict int

const (
	// replyForeign answers another query, carries another client's cookie,
	// or is malformed: it is ignored and counted.
	replyForeign verdict = iota
	// replyCaseOnly matches but for the case of the question's name.
	replyCaseOnly
	// replyOK is the answer.
	replyOK
)

// match judges resp as the reply to m, sent to u. It must be a response
// with m's ID and opcode and the same question (type, class, and name:
// byte for byte with exactCase, else ignoring ASCII case); a COOKIE option
// in it must carry our client cookie and a well-formed server cookie,
// which u then keeps for later queries (RFC 7873 §5.3).
//
// An error reply (FORMERR, SERVFAIL, NOTIMP, REFUSED) may come without the
// question, as NSD sends one for a class it does not serve: with the ID
// and the connected socket it still answers m, and waiting on for another
// would only end in a timeout that counts against the upstream.
func match(u *upstream, resp, m *dns.Msg, exactCase bool) verdict {
	if !resp.Response || resp.Id != m.Id || resp.Opcode != m.Opcode {
		return replyForeign
	}
	caseOnly := false
	switch len(resp.Question) {
	case 0:
		if !bareError(resp) {
			return replyForeign
		}
	case 1:
		a, b := resp.Question[0], m.Question[0]
		if a.Qtype != b.Qtype || a.Qclass != b.Qclass || !equalFoldASCII(a.Name, b.Name) {
			return replyForeign
		}
		caseOnly = exactCase && a.Name != b.Name
	default:
		return replyForeign
	}
	server, ok := replyCookie(resp, u.clientCookie)
	if !ok {
		return replyForeign
	}
	if resp.Rcode == dns.RcodeBadCookie && server == "" {
		return replyForeign // RFC 7873 §5.3: BADCOOKIE carries a cookie
	}
	if caseOnly {
		return replyCaseOnly
	}
	if server != "" {
		u.setServerCookie(server)
	}
	return replyOK
}

// replyCookie checks the COOKIE option of resp, if any, against client
// (hex) and returns the server cookie in it (hex, "" when resp has none).
// ok is false when the option is malformed or carries another client
// cookie: RFC 7873 §5.3 says to discard such a reply.
func replyCookie(resp *dns.Msg, client string) (server string, ok bool) {
	opt := resp.IsEdns0()
	if opt == nil {
		return "", true
	}
	found := false
	for _, o := range opt.Option {
		c, isCookie := o.(*dns.EDNS0_COOKIE)
		if !isCookie {
			continue
		}
		if found {
			return "", false // two COOKIE options
		}
		found = true
		// 8 bytes of client cookie, then 8 to 32 of server cookie.
		if n := len(c.Cookie); n < 2*(8+8) || n > 2*(8+32) || n%2 != 0 || c.Cookie[:16] != client {
			return "", false
		}
		server = c.Cookie[16:]
	}
	return server, true
}

// bareError reports whether resp, a reply without a question, is an error
// reply that says nothing about any name: no records but an OPT.
func bareError(resp *dns.Msg) bool {
	switch resp.Rcode {
	case dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNotImplemented, dns.RcodeRefused:
	default:
		return false
	}
	if len(resp.Answer) != 0 || len(resp.Ns) != 0 {
		return false
	}
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			return false
		}
	}
	return true
}

// hasLetter reports whether name has an ASCII letter for 0x20 to change.
func hasLetter(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i] | 0x20; 'a' <= c && c <= 'z' {
			return true
		}
	}
	return false
}

// equalFoldASCII compares DNS names case-insensitively (ASCII letters only,
// as RFC 4343 says).
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
