package server

import (
	"github.com/shardns/shardns/dnsd/ratelimit"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
)

// commonScratch is what serveCommon needs per message, pooled so that a
// hit allocates nothing.
type commonScratch struct {
	q   dnsmsg.Query
	res lookup.Result
	key [dnsmsg.MaxKeyLen]byte
}

// serveCommon answers a common query (see dnsmsg.ParseCommon) from a
// fresh entry of the in-process cache, without unpacking it: the same
// steps as serve, in the same order (ACL, rate limit, lookup, fit), with
// the same reply and the same metrics. done false means nothing was
// answered: serve must, with the limiter's verdict in lim if it was asked.
func (s *Server) serveCommon(req []byte, from transport.Peer, dst []byte, lim *limit) (reply []byte, done bool) {
	sc := s.scratch.Get().(*commonScratch)
	defer func() {
		sc.res = lookup.Result{} // holds no entry in the pool
		s.scratch.Put(sc)
	}()
	q := &sc.q
	key, nameEnd, ok := dnsmsg.ParseCommon(req, q, sc.key[:0])
	if !ok {
		return nil, false
	}
	if s.acl != nil && !s.acl.Allowed(from.Addr.Addr()) {
		return nil, false // serve refuses it
	}
	if !from.TCP && s.limiter != nil && s.check(lim, from.Addr.Addr()) != ratelimit.Allow {
		return nil, false // serve drops or slips it
	}
	if !s.l1.LookupL1(key, q, &sc.res) {
		return nil, false
	}
	res := &sc.res
	reply = dnsmsg.AppendReplyName(dst, res.Stored(), q, req[headerLen:nameEnd], dnsmsg.ReplyOptions{Age: res.Age()})
	if len(reply) >= 4 {
		s.metrics.rcode(reply[3] & 0x0F).Inc()
	}
	return s.fit(reply, q, from), true
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
