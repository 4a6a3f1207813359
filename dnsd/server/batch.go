package server

import (
	"context"

	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
)

var _ transport.BatchHandler = (*Server)(nil)

// ServeBatch answers the common queries among ms (those L1 could not
// answer inline) with one read of the cache for all of them: one MGET per
// Redis shard, no goroutine and no timer per query. A fresh hit is
// answered at once, with the reply and the metrics ServeMessage gives it;
// any other common query gets a Finish that goes on through the chain
// from that read, without reading the cache again. Every other message is
// left to ServeMessage, and so is all of UDP when rate limiting is on
// (see ServeInline).
func (s *Server) ServeBatch(ctx context.Context, ms []transport.BatchMsg) {
	if s.batch == nil || s.generalOnly {
		return
	}
	qs := make([]*dnsmsg.Query, 0, len(ms))
	at := make([]int, 0, len(ms))       // qs[j] is the question of ms[at[j]]
	nameEnds := make([]int, 0, len(ms)) // and ms[at[j]].Req[headerLen:nameEnds[j]] its name as spelled
	cookies := make([]queryCookie, 0, len(ms))
	sc := s.getScratch()
	defer s.putScratch(sc)
	for i := range ms {
		m := &ms[i]
		if len(m.Req) < headerLen || m.Req[2]&bitQR != 0 || (!m.From.TCP && s.limiter.Enabled()) {
			continue
		}
		var lim limit // not asked: the limiter is off for this message
		c, ok := s.parseCommon(m.Req, m.From, sc, &lim)
		if !ok {
			continue
		}
		qs = append(qs, commonQuery(c))
		at, nameEnds, cookies = append(at, i), append(nameEnds, c.nameEnd), append(cookies, c.ck)
	}
	if len(qs) == 0 {
		return
	}
	out := make([]lookup.Cached, len(qs))
	if !s.batch.LookupCached(ctx, s.budget, qs, out) {
		return
	}
	for j, q := range qs {
		m := &ms[at[j]]
		if out[j].Hit {
			m.Reply, m.Done = s.replyCommon(m.Req, nameEnds[j], cookies[j], q, m.From, &out[j].Result, nil, m.Dst), true
			continue
		}
		req, from, nameEnd, ck, c := m.Req, m.From, nameEnds[j], cookies[j], &out[j]
		m.Finish = func(ctx context.Context, dst []byte) []byte {
			res, err := s.batch.LookupAfter(ctx, s.budget, q, c)
			return s.replyCommon(req, nameEnd, ck, q, from, res, err, dst)
		}
	}
}

// commonQuery is c's question as a query of its own: the chain may keep
// it past the call (a shared resolver call outlives an impatient client),
// the scratch may not.
func commonQuery(c common) *dnsmsg.Query {
	q := new(dnsmsg.Query)
	*q = c.sc.q
	q.Key = string(c.key)
	q.Name, _ = cache.KeyName(q.Key)
	return q
}
