package server

import (
	"time"

	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/lookup"
)

// What answered a query that no lookup answered, as the query log names it
// beside lookup's sources (l1, redis, stale, resolver).
const (
	srcRefused   lookup.Source = "refused"   // the client is outside -allow
	srcFormErr   lookup.Source = "formerr"   // the message or its COOKIE option did not parse
	srcBadCookie lookup.Source = "badcookie" // a bad server cookie over UDP
	srcSlip      lookup.Source = "slip"      // rate-limited, answered empty with TC=1
	srcRejected  lookup.Source = "rejected"  // a query the RFCs' rules answer with an error (NOTIMP, FORMERR...)
	srcLocal     lookup.Source = "local"     // answered without a lookup (ANY, AXFR, meta types: dnsmsg.LocalAnswer)
	srcServFail  lookup.Source = "servfail"  // the lookup failed
)

// logAnswer tells the query logs of m, answered with reply by src.
func (s *Server) logAnswer(m *transport.Msg, st *msgState, reply []byte, src lookup.Source) {
	now := time.Now()
	start := st.start
	if start.IsZero() { // taken up before the logs were on
		start = now
	}
	proto := m.From.Protocol()
	if s.dnstap != nil {
		s.dnstap.Client(proto, m.From.Addr, start, now, m.Req, reply)
	}
	if s.qlog != nil && s.qlog.Sampled() {
		s.qlog.Log(proto, m.From.Addr, start, now, string(src), m.Req, reply)
	}
}
