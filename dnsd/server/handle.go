package server

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/cookie"
	"github.com/shardns/shardns/dnsd/ratelimit"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
)

// Header bits dnsd reads before parsing a message.
const (
	headerLen = 12
	bitQR     = 0x80 // in byte 2
	bitTC     = 0x02 // in byte 2
)

// msgState is what the server knows of one message from one Serve call
// to the next, pooled so that a hit allocates nothing.
type msgState struct {
	q       dnsmsg.Query
	key     [dnsmsg.MaxKeyLen]byte
	keyLen  int
	nameEnd int      // the common way: req[headerLen:nameEnd] is the name as the client spelled it; 0: the general way
	r       *dns.Msg // the message unpacked: the general way, or a common query's error reply
	ck      queryCookie
	peek    [1]lookup.Peeked // what the cache held for q
	peeked  bool             // peek is what every tier held
	l1Miss  bool             // the reader's Peek of L1 missed q
	start   time.Time        // when the message was taken up; set only for the query logs
}

func (s *Server) getState() *msgState {
	st := s.states.Get().(*msgState)
	if s.logging {
		st.start = time.Now()
	}
	return st
}

func (s *Server) putState(st *msgState) {
	st.reset() // holds no message, entry or client in the pool
	s.states.Put(st)
}

// reset empties st but for its key bytes, which hold no reference and
// which keyLen hides: a hit does not zero the whole array.
func (st *msgState) reset() {
	st.q, st.keyLen, st.nameEnd, st.r, st.ck = dnsmsg.Query{}, 0, 0, nil, queryCookie{}
	st.peek[0], st.peeked, st.l1Miss = lookup.Peeked{}, false, false
}

var _ transport.Handler = (*Server)(nil)

// Serve answers the messages of one read, or one TCP message: see
// transport.Handler. Each message is parsed once, in its first call, and
// takes these steps in this order: drop what must not be answered (no
// header, QR set); parse, the common way (dnsmsg.ParseCommon: the shape
// nearly every client sends, read without unpacking) or the general way;
// admit (see admit: the rate limiter, the cookie check and the ACL, asked
// here and nowhere else); apply the RFCs' rules for odd queries; then look
// the question up: a Peek of the cache for all the messages of the call,
// then, for those it misses, Lookup within the server's budget. The
// replies are the same bytes either way; every reply to a query with a
// client cookie carries a server cookie (RFC 7873 §5.2).
//
// With wait false (the goroutine reading the socket) it answers the
// common queries that need no I/O: refusals, and fresh hits of the
// in-process cache, with no allocation. The rest it leaves: the general
// way's messages unparsed, the common way's parsed, admitted and with L1
// missed. A wait call on several messages reads the cache for all at once
// (one MGET per Redis shard), answers the hits and leaves the misses, each
// to a call of its own, which looks it up.
func (s *Server) Serve(ctx context.Context, ms []transport.Msg, wait bool) {
	s.serve(ctx, ms, wait, false)
}

// serve is Serve; with general, every message takes the general way (the
// tests compare the two ways with it).
func (s *Server) serve(ctx context.Context, ms []transport.Msg, wait, general bool) {
	if !wait {
		for i := range ms {
			s.serveAtOnce(ctx, &ms[i])
		}
		return
	}
	var ps []lookup.Peeked
	var at []int // ps[j] is the question of ms[at[j]]; nil: of ms[0]
	if len(ms) > 1 {
		sc := s.scratch.Get().(*peekScratch)
		defer s.putScratch(sc)
		ps, at = sc.ps[:0], sc.at[:0]
		defer func() { sc.ps, sc.at = ps, at }()
	}
	for i := range ms {
		m := &ms[i]
		st, _ := m.State.(*msgState)
		if st == nil {
			st = s.getState()
			m.State = st
			if !s.parse(m, st, general) {
				continue // answered
			}
		}
		if !st.peeked {
			if len(ms) == 1 { // TCP, or a quiet read: nothing to allocate
				st.peek[0] = lookup.Peeked{Query: &st.q, L1Missed: st.l1Miss}
				ps = st.peek[:]
				break
			}
			ps = append(ps, lookup.Peeked{Query: &st.q, L1Missed: st.l1Miss})
			at = append(at, i)
		}
	}
	if len(ps) > 0 {
		s.chain.Peek(ctx, ps, false)
		for j := range ps {
			i := 0
			if at != nil {
				i = at[j]
			}
			m := &ms[i]
			st := m.State.(*msgState)
			st.peek[0], st.peeked = ps[j], true
			if ps[j].Hit {
				s.reply(m, st, &ps[j].Result, nil)
			}
		}
	}
	if len(ms) == 1 && !ms[0].Done && ms[0].State != nil {
		m := &ms[0]
		st := m.State.(*msgState)
		// The chain may keep the question past the lookup (a shared
		// resolver call outlives an impatient client): its own copy.
		q := new(dnsmsg.Query)
		*q = st.q
		p := &st.peek[0]
		p.Query = q
		res, err := s.chain.LookupPeeked(ctx, p, s.budget)
		s.reply(m, st, res, err)
	}
}

// peekScratch is what a wait call on several messages reuses: their
// questions for Peek, and which message each is.
type peekScratch struct {
	ps []lookup.Peeked
	at []int
}

func (s *Server) putScratch(sc *peekScratch) {
	clear(sc.ps) // holds no question or entry in the pool
	sc.ps, sc.at = sc.ps[:0], sc.at[:0]
	s.scratch.Put(sc)
}

// serveAtOnce is the reader's part of m: a common query refused or
// answered from a fresh L1 entry, without waiting or allocating; any other
// message is left, a common one with its state.
func (s *Server) serveAtOnce(ctx context.Context, m *transport.Msg) {
	if !s.header(m) {
		return
	}
	st := s.getState()
	m.State = st
	if !s.readCommon(m, st) {
		m.State = nil // the general way's: left unparsed
		s.putState(st)
		return
	}
	if !s.admit(m, st, true) {
		return // answered
	}
	p := &st.peek[0]
	*p = lookup.Peeked{Query: &st.q, Key: st.key[:st.keyLen]}
	s.chain.Peek(ctx, st.peek[:], true)
	if p.Hit {
		s.reply(m, st, &p.Result, nil)
		return
	}
	*p = lookup.Peeked{}
	st.setKey()
	st.l1Miss = true
}

// parse reads m in its first wait call, the common way unless general is
// set, and admits it: false means it is answered (or dropped), true that
// st holds a question to look up.
func (s *Server) parse(m *transport.Msg, st *msgState, general bool) bool {
	if !s.header(m) {
		return false
	}
	if !general && s.readCommon(m, st) {
		if !s.admit(m, st, true) {
			return false
		}
		st.setKey()
		return true
	}
	st.reset()
	r := new(dns.Msg)
	parsed := r.Unpack(m.Req) == nil && dnsmsg.WellFormed(m.Req, r)
	if parsed {
		st.r = r
		st.ck = s.cookieOf(r, m.From)
		if st.ck.v != 0 {
			s.metrics.cookie(st.ck.v).Inc()
		}
	}
	if !s.admit(m, st, parsed) {
		return false
	}
	q, rej := dnsmsg.ParseQuery(r)
	if rej != nil {
		s.countQuery(m, st, rej.Rcode)
		s.done(m, s.appendMsg(m.Dst, s.withCookie(dnsmsg.ErrorReply(r, rej.Rcode, rej.EDE, rej.Text), st.ck, m.From)), srcRejected)
		return false
	}
	st.q = q
	if lm, _ := dnsmsg.LocalAnswer(r, &st.q); lm != nil {
		s.countQuery(m, st, lm.Rcode)
		s.done(m, s.fit(s.appendMsg(m.Dst, s.withCookie(lm, st.ck, m.From)), &st.q, m.From), srcLocal)
		return false
	}
	return true
}

// header drops, and reports false for, a message with no header to
// answer, or a response: answering could make a loop or an amplifier (RFC
// 1035 §4.1.1, RFC 5452 §9.1).
func (s *Server) header(m *transport.Msg) bool {
	if len(m.Req) < headerLen || m.Req[2]&bitQR != 0 {
		s.metrics.dropped.WithLabelValues("malformed").Inc()
		s.done(m, nil, "")
		return false
	}
	return true
}

// readCommon reads m the common way into st, with its COOKIE option;
// false for a message of another shape.
func (s *Server) readCommon(m *transport.Msg, st *msgState) bool {
	key, nameEnd, ok := dnsmsg.ParseCommon(m.Req, &st.q, st.key[:0])
	if !ok {
		return false
	}
	st.keyLen, st.nameEnd = len(key), nameEnd
	if s.cookies != nil && st.q.EDNS {
		st.ck = s.commonCookie(m.Req, nameEnd, m.From)
		if st.ck.v != 0 {
			s.metrics.cookie(st.ck.v).Inc()
		}
	}
	return true
}

// setKey sets the common query's cache key and name from its key bytes.
func (st *msgState) setKey() {
	if st.q.Key == "" {
		st.q.Key = string(st.key[:st.keyLen])
		st.q.Name, _ = cache.KeyName(st.q.Key)
	}
}

// admit decides whether the message in st may be looked up, and answers
// it when not. It is the one place that asks the rate limiter (once per
// UDP message: every reply, REFUSED and FORMERR too, is limited, unless
// the client returned a valid server cookie, which shows it receives what
// is sent to its address) and the ACL, in this order: the limiter, a
// malformed message or COOKIE option (FORMERR), the ACL (REFUSED), a bad
// server cookie over UDP (BADCOOKIE). parsed false means m did not parse.
func (s *Server) admit(m *transport.Msg, st *msgState, parsed bool) bool {
	qc, from := st.ck, m.From
	if !qc.v.Verified() {
		switch s.limited(from) {
		case ratelimit.Drop:
			s.metrics.dropped.WithLabelValues("rate_limit").Inc()
			s.done(m, nil, "")
			return false
		case ratelimit.Slip:
			s.metrics.slipped.Inc()
			if !parsed {
				s.countQuery(m, st, dns.RcodeFormatError)
				// FORMERR is a bare header already, as small as a
				// reply gets: TC=1 is the slip's only mark.
				reply := formErr(m.Dst, m.Req)
				reply[len(m.Dst)+2] |= bitTC
				s.done(m, reply, srcSlip)
				return false
			}
			s.countQuery(m, st, dns.RcodeSuccess)
			s.done(m, s.appendMsg(m.Dst, s.withCookie(truncated(s.unpacked(m, st)), qc, from)), srcSlip)
			return false
		}
	}
	switch {
	case !parsed:
		s.countQuery(m, st, dns.RcodeFormatError)
		s.done(m, formErr(m.Dst, m.Req), srcFormErr)
	case qc.v == cookie.Malformed:
		s.countQuery(m, st, dns.RcodeFormatError)
		s.done(m, s.appendMsg(m.Dst, dnsmsg.ErrorReply(s.unpacked(m, st), dns.RcodeFormatError, dns.ExtendedErrorCodeOther, "malformed COOKIE option")), srcFormErr)
	case s.acl != nil && !s.acl.Allowed(from.Addr.Addr()):
		s.metrics.refused.Inc()
		s.countQuery(m, st, dns.RcodeRefused)
		s.done(m, s.appendMsg(m.Dst, s.withCookie(dnsmsg.ErrorReply(s.unpacked(m, st), dns.RcodeRefused, dns.ExtendedErrorCodeProhibited, "client not allowed"), qc, from)), srcRefused)
	case !from.TCP && refused(qc.v):
		s.countQuery(m, st, dns.RcodeBadCookie)
		s.done(m, s.appendMsg(m.Dst, s.withCookie(dnsmsg.ErrorReply(s.unpacked(m, st), dns.RcodeBadCookie, 0, ""), qc, from)), srcBadCookie)
	default:
		return true
	}
	return false
}

// limited is the limiter's verdict on a message from a client: Allow over
// TCP, whose handshake proves the source, and when no limiter is set.
func (s *Server) limited(from transport.Peer) ratelimit.Action {
	if from.TCP || s.limiter == nil {
		return ratelimit.Allow
	}
	return s.limiter.Check(from.Addr.Addr())
}

// unpacked is m's message unpacked, for a reply built from it: a common
// query is unpacked only for one of the error replies.
func (s *Server) unpacked(m *transport.Msg, st *msgState) *dns.Msg {
	if st.r == nil {
		st.r = new(dns.Msg)
		_ = st.r.Unpack(m.Req) // ParseCommon accepted it: it unpacks
	}
	return st.r
}

// done answers m with reply (nil: silence) and lets its state go; src
// says what answered, for the query logs.
func (s *Server) done(m *transport.Msg, reply []byte, src lookup.Source) {
	m.Reply, m.Done = reply, true
	if st, ok := m.State.(*msgState); ok {
		if s.logging && reply != nil {
			s.logAnswer(m, st, reply, src)
		}
		m.State = nil
		s.putState(st)
	}
}

// reply answers m, whose question st holds, with the lookup's result res
// or its error err: the stored answer patched for the client (the common
// way keeps the name as the client spelled it), or a SERVFAIL saying why.
func (s *Server) reply(m *transport.Msg, st *msgState, res *lookup.Result, err error) {
	q, from, dst := &st.q, m.From, m.Dst
	if err != nil {
		s.countQuery(m, st, dns.RcodeServerFailure)
		s.done(m, s.lookupFailed(dst, s.unpacked(m, st), q, st.ck, from, err), srcServFail)
		return
	}
	o := dnsmsg.ReplyOptions{Age: res.Age(), Stale: res.Stale()}
	if e := res.Entry.EDE; e != nil {
		o.EDE, o.Text = e.Code, e.Text
	}
	var buf [cookie.ReplyLen]byte
	if st.ck.answerable() {
		o.Cookie = s.replyOption(buf[:0], st.ck, from)
	}
	var reply []byte
	if st.nameEnd > 0 {
		reply = dnsmsg.AppendReplyName(dst, res.Stored(), q, m.Req[headerLen:st.nameEnd], o)
	} else {
		reply = dnsmsg.AppendReply(dst, res.Stored(), q, o)
	}
	if len(reply) >= 4 {
		s.countQuery(m, st, int(reply[3]&0x0F))
	}
	s.done(m, s.fit(reply, q, from), res.Source)
}

// lookupFailed is the SERVFAIL for a lookup that ended in err, with an
// Extended DNS Error saying why.
func (s *Server) lookupFailed(dst []byte, r *dns.Msg, q *dnsmsg.Query, qc queryCookie, from transport.Peer, err error) []byte {
	code, text := uint16(dns.ExtendedErrorCodeNoReachableAuthority), "resolver unreachable"
	if errors.Is(err, lookup.ErrTimeout) {
		code, text = dns.ExtendedErrorCodeNetworkError, "resolver did not answer in time"
	}
	s.log.Debug("lookup failed", "key", q.Key, "err", err)
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
