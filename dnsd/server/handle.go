package server

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/cookie"
	"github.com/shardns/shardns/dnsd/ratelimit"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
)

// Header bits dnsd reads before parsing a message.
const (
	headerLen = 12
	bitQR     = 0x80 // in byte 2
	bitTC     = 0x02 // in byte 2
)

// ServeMessage answers one message from a client, in this order: drop what
// must not be answered (no header, QR set), parse, rate-limit UDP clients
// (every reply, REFUSED and FORMERR too, unless the client returned a valid
// server cookie: it has shown it receives what is sent to its address),
// refuse clients outside the ACL, answer a bad server cookie, apply the
// RFCs' rules for odd queries, then look the question up. Every reply to a
// query with a client cookie carries a server cookie (RFC 7873 §5.2). The
// reply is appended to dst; nil means silence.
//
// The common query (see dnsmsg.ParseCommon) takes a shorter way to the
// same reply, without unpacking it: from a fresh entry of the in-process
// cache (answerL1), or else through the chain (lookupCommon).
func (s *Server) ServeMessage(ctx context.Context, req []byte, from transport.Peer, dst []byte) []byte {
	if len(req) < headerLen || req[2]&bitQR != 0 {
		// No header to answer, or a response: answering could make a loop
		// or an amplifier (RFC 1035 §4.1.1, RFC 5452 §9.1).
		s.metrics.dropped.WithLabelValues("malformed").Inc()
		return nil
	}
	var lim limit
	if !s.generalOnly {
		sc := s.getScratch()
		defer s.putScratch(sc)
		if c, ok := s.parseCommon(req, from, sc, &lim); ok {
			if reply, done := s.answerL1(req, c, from, dst); done {
				return reply
			}
			return s.lookupCommon(ctx, req, c, from, dst)
		}
	}
	return s.serve(ctx, req, from, dst, lim)
}

// limit is the rate limiter's verdict on one message, once asked: it is
// asked at most once per message, whichever way the message takes.
type limit struct {
	asked  bool
	action ratelimit.Action
}

// check asks the limiter about a UDP message from addr, unless it was
// asked already.
func (s *Server) check(lim *limit, addr netip.Addr) ratelimit.Action {
	if !lim.asked {
		lim.asked, lim.action = true, s.limiter.Check(addr)
	}
	return lim.action
}

// limited is the limiter's verdict on a message from a client: Allow over
// TCP, whose handshake proves the source, and when no limiter is set.
func (s *Server) limited(lim *limit, from transport.Peer) ratelimit.Action {
	if from.TCP || s.limiter == nil {
		return ratelimit.Allow
	}
	return s.check(lim, from.Addr.Addr())
}

// serve is ServeMessage's general way: every message can take it.
func (s *Server) serve(ctx context.Context, req []byte, from transport.Peer, dst []byte, lim limit) []byte {
	r := new(dns.Msg)
	if err := r.Unpack(req); err != nil || !dnsmsg.WellFormed(req, r) {
		switch s.limited(&lim, from) {
		case ratelimit.Drop:
			s.metrics.dropped.WithLabelValues("rate_limit").Inc()
			return nil
		case ratelimit.Slip:
			// FORMERR is a bare header already, as small as a reply
			// gets: TC=1 is the slip's only mark.
			s.metrics.slipped.Inc()
			reply := formErr(dst, req)
			reply[len(dst)+2] |= bitTC
			return reply
		}
		s.metrics.answered.WithLabelValues("FORMERR").Inc()
		return formErr(dst, req)
	}
	qc := s.cookieOf(r, from)
	if qc.v != 0 {
		s.metrics.cookie(qc.v).Inc()
	}
	if !qc.v.Verified() {
		switch s.limited(&lim, from) {
		case ratelimit.Drop:
			s.metrics.dropped.WithLabelValues("rate_limit").Inc()
			return nil
		case ratelimit.Slip:
			s.metrics.slipped.Inc()
			return s.appendMsg(dst, s.withCookie(truncated(r), qc, from))
		}
	}
	if qc.v == cookie.Malformed {
		s.metrics.answered.WithLabelValues("FORMERR").Inc()
		return s.appendMsg(dst, dnsmsg.ErrorReply(r, dns.RcodeFormatError, dns.ExtendedErrorCodeOther, "malformed COOKIE option"))
	}
	if s.acl != nil && !s.acl.Allowed(from.Addr.Addr()) {
		s.metrics.refused.Inc()
		return s.appendMsg(dst, s.withCookie(dnsmsg.ErrorReply(r, dns.RcodeRefused, dns.ExtendedErrorCodeProhibited, "client not allowed"), qc, from))
	}
	if !from.TCP && refused(qc.v) {
		s.metrics.answered.WithLabelValues("BADCOOKIE").Inc()
		return s.appendMsg(dst, s.withCookie(dnsmsg.ErrorReply(r, dns.RcodeBadCookie, 0, ""), qc, from))
	}
	q, rej := dnsmsg.ParseQuery(r)
	if rej != nil {
		s.metrics.answered.WithLabelValues(dns.RcodeToString[rej.Rcode]).Inc()
		return s.appendMsg(dst, s.withCookie(dnsmsg.ErrorReply(r, rej.Rcode, rej.EDE, rej.Text), qc, from))
	}
	if m, _ := dnsmsg.LocalAnswer(r, &q); m != nil {
		s.metrics.answered.WithLabelValues(dns.RcodeToString[m.Rcode]).Inc()
		return s.fit(s.appendMsg(dst, s.withCookie(m, qc, from)), &q, from)
	}
	return s.lookup(ctx, r, &q, qc, from, dst)
}

func (s *Server) lookup(ctx context.Context, r *dns.Msg, q *dnsmsg.Query, qc queryCookie, from transport.Peer, dst []byte) []byte {
	res, err := s.lookupWithin(ctx, q)
	if err != nil {
		return s.lookupFailed(dst, r, q, qc, from, err)
	}
	o := dnsmsg.ReplyOptions{Age: res.Age(), Stale: res.Stale()}
	var buf [cookie.ReplyLen]byte
	if qc.answerable() {
		o.Cookie = s.replyOption(buf[:0], qc, from)
	}
	reply := dnsmsg.AppendReply(dst, res.Stored(), q, o)
	return s.finish(reply, q, from)
}

// lookupWithin looks q up within the server's budget: armed lazily by a
// chain that can (a cache hit needs no timer), else with a timer.
func (s *Server) lookupWithin(ctx context.Context, q *dnsmsg.Query) (*lookup.Result, error) {
	if s.budgeted != nil {
		return s.budgeted.LookupBudget(ctx, s.budget, q)
	}
	ctx, cancel := context.WithTimeout(ctx, s.budget)
	defer cancel()
	return s.chain.Lookup(ctx, q)
}

// lookupFailed is the SERVFAIL for a lookup that ended in err, with an
// Extended DNS Error saying why.
func (s *Server) lookupFailed(dst []byte, r *dns.Msg, q *dnsmsg.Query, qc queryCookie, from transport.Peer, err error) []byte {
	code, text := uint16(dns.ExtendedErrorCodeNoReachableAuthority), "resolver unreachable"
	if errors.Is(err, lookup.ErrTimeout) {
		code, text = dns.ExtendedErrorCodeNetworkError, "resolver did not answer in time"
	}
	s.log.Debug("lookup failed", "key", q.Key, "err", err)
	s.metrics.answered.WithLabelValues("SERVFAIL").Inc()
	return s.appendMsg(dst, s.withCookie(dnsmsg.ErrorReply(r, dns.RcodeServerFailure, code, text), qc, from))
}

// fit trims a UDP reply to the client's size, setting TC.
func (s *Server) fit(reply []byte, q *dnsmsg.Query, from transport.Peer) []byte {
	if from.TCP || len(reply) <= q.ReplySize() {
		return reply
	}
	s.metrics.truncated.Inc()
	return dnsmsg.Fit(reply, q.ReplySize())
}

func (s *Server) appendMsg(dst []byte, m *dns.Msg) []byte {
	out, err := m.PackBuffer(dst[len(dst):cap(dst)])
	if err != nil {
		s.log.Warn("pack reply", "err", err)
		return nil
	}
	if len(dst) > 0 {
		return append(dst, out...)
	}
	return out
}

// formErr answers a message whose header reads but whose body does not:
// FORMERR with the ID and opcode, and nothing else, since nothing else can
// be trusted (RFC 1035 §4.1.1).
func formErr(dst, req []byte) []byte {
	dst = append(dst, req[:4]...)
	dst[len(dst)-2] = req[2]&0x78 | bitQR // opcode kept; AA, TC, RD cleared
	dst[len(dst)-1] = dns.RcodeFormatError
	return binary.BigEndian.AppendUint64(dst, 0) // all four counts 0
}

// truncated is the reply to a rate-limited client: empty, TC set, so a real
// client retries over TCP, where spoofed sources cannot follow. A query
// with EDNS gets an OPT record (RFC 6891 §6.1.1).
func truncated(r *dns.Msg) *dns.Msg {
	m := dnsmsg.ErrorReply(r, dns.RcodeSuccess, 0, "")
	m.Truncated = true
	return m
}
