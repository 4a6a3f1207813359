package server

import (
	"context"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/cookie"
	"github.com/shardns/shardns/dnsd/ratelimit"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
)

// commonScratch is what the common way needs per message, pooled so that
// a hit allocates nothing.
type commonScratch struct {
	q   dnsmsg.Query
	res lookup.Result
	key [dnsmsg.MaxKeyLen]byte
}

// common is a common query (see dnsmsg.ParseCommon) read without
// unpacking it, that the ACL, the cookie check and the rate limiter let
// through.
type common struct {
	sc      *commonScratch
	key     []byte      // the cache key, in sc.key
	nameEnd int         // req[headerLen:nameEnd] is the name as the client spelled it
	ck      queryCookie // its COOKIE option; zero: none, or cookies are off
}

// parseCommon reads req the common way: ok false means the general way
// must answer it (another shape, a client the ACL refuses, a COOKIE option
// to refuse, or a client the rate limiter drops or slips, with the
// limiter's verdict in lim).
func (s *Server) parseCommon(req []byte, from transport.Peer, sc *commonScratch, lim *limit) (c common, ok bool) {
	key, nameEnd, ok := dnsmsg.ParseCommon(req, &sc.q, sc.key[:0])
	if !ok {
		return c, false
	}
	if s.acl != nil && !s.acl.Allowed(from.Addr.Addr()) {
		return c, false // serve refuses it
	}
	var qc queryCookie
	if s.cookies != nil && sc.q.EDNS {
		qc = s.commonCookie(req, nameEnd, from)
		if qc.v == cookie.Malformed || (!from.TCP && refused(qc.v)) {
			return c, false // serve answers FORMERR or BADCOOKIE
		}
	}
	if !from.TCP && s.limiter != nil && !qc.v.Verified() && s.check(lim, from.Addr.Addr()) != ratelimit.Allow {
		return c, false // serve drops or slips it
	}
	return common{sc: sc, key: key, nameEnd: nameEnd, ck: qc}, true
}

func (s *Server) getScratch() *commonScratch { return s.scratch.Get().(*commonScratch) }

func (s *Server) putScratch(sc *commonScratch) {
	sc.res = lookup.Result{} // holds no entry in the pool
	sc.q = dnsmsg.Query{}
	s.scratch.Put(sc)
}

// serveCommon answers a common query from a fresh entry of the in-process
// cache, without unpacking it: the same steps as serve, in the same order
// (ACL, rate limit, lookup, fit), with the same reply and the same
// metrics. done false means nothing was answered: serve must, with the
// limiter's verdict in lim if it was asked.
func (s *Server) serveCommon(req []byte, from transport.Peer, dst []byte, lim *limit) (reply []byte, done bool) {
	sc := s.getScratch()
	defer s.putScratch(sc)
	c, ok := s.parseCommon(req, from, sc, lim)
	if !ok {
		return nil, false
	}
	return s.answerL1(req, c, from, dst)
}

// answerL1 answers c from a fresh L1 entry, if there is one.
func (s *Server) answerL1(req []byte, c common, from transport.Peer, dst []byte) (reply []byte, done bool) {
	q, res := &c.sc.q, &c.sc.res
	if s.l1 == nil || !s.l1.LookupL1(c.key, q, res) {
		return nil, false
	}
	o := dnsmsg.ReplyOptions{Age: res.Age()}
	var buf [cookie.ReplyLen]byte
	if c.ck.answerable() {
		o.Cookie = s.replyCookie(buf[:0], c.ck, from)
	}
	reply = dnsmsg.AppendReplyName(dst, res.Stored(), q, req[headerLen:c.nameEnd], o)
	return s.finish(reply, q, from), true
}

// lookupCommon answers c through the whole chain (Redis, the resolver),
// still without unpacking the query: the reply is the stored answer
// patched for the client, as serve's lookup makes it.
func (s *Server) lookupCommon(ctx context.Context, req []byte, c common, from transport.Peer, dst []byte) []byte {
	q := commonQuery(c)
	res, err := s.lookupWithin(ctx, q)
	return s.replyCommon(req, c.nameEnd, c.ck, q, from, res, err, dst)
}

// replyCommon is the reply to the common query req (its name ending at
// nameEnd, its cookie ck) whose lookup gave res or err.
func (s *Server) replyCommon(req []byte, nameEnd int, ck queryCookie, q *dnsmsg.Query, from transport.Peer, res *lookup.Result, err error, dst []byte) []byte {
	var o dnsmsg.ReplyOptions
	var buf [cookie.ReplyLen]byte
	if ck.answerable() {
		o.Cookie = s.replyCookie(buf[:0], ck, from)
	}
	if err != nil {
		r := new(dns.Msg)
		if uerr := r.Unpack(req); uerr != nil {
			return formErr(dst, req) // ParseCommon accepted it: not reached
		}
		return s.lookupFailed(dst, r, q, ck, from, err)
	}
	o.Age, o.Stale = res.Age(), res.Stale()
	reply := dnsmsg.AppendReplyName(dst, res.Stored(), q, req[headerLen:nameEnd], o)
	return s.finish(reply, q, from)
}

// finish counts reply's RCODE and fits it to the client's size.
func (s *Server) finish(reply []byte, q *dnsmsg.Query, from transport.Peer) []byte {
	if len(reply) >= 4 {
		s.metrics.rcode(reply[3] & 0x0F).Inc()
	}
	return s.fit(reply, q, from)
}

var _ transport.InlineHandler = (*Server)(nil)

// ServeInline answers, at once and on the goroutine reading the socket, a
// common query whose answer is fresh in the in-process cache: no I/O and
// no wait. Everything else is left to ServeMessage, and so is all of UDP
// when rate limiting is on, since the limiter must be asked once per
// message and only ServeMessage can carry its verdict on.
func (s *Server) ServeInline(req []byte, from transport.Peer, dst []byte) ([]byte, bool) {
	if s.l1 == nil || (!from.TCP && s.limiter.Enabled()) {
		return nil, false
	}
	var lim limit // a disabled limiter may be asked again
	return s.serveCommon(req, from, dst, &lim)
}
