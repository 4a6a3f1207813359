package forward

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/nsdtest"
)

// Against a real server, NSD: it keeps the case of the name (RFC 4343), so
// 0x20 stays on with every answer taken at once; it has no DNS cookies
// (4.6), so it never echoes one and queries work as without them. It
// compresses names in records against the question, in 0x20 case: the
// answers must read exactly as NSD's answers to the caller's own query.
func TestRealServerKeepsCaseWithoutCookies(t *testing.T) {
	srv := nsdtest.Start(t, map[string]string{
		"zero.test": "$ORIGIN zero.test.\n$TTL 60\n@ SOA ns hostmaster 1 7200 900 1209600 60\n@ NS ns\n@ MX 10 mail\nns A 127.0.0.1\nwww A 192.0.2.20\nalias CNAME www\nmail A 192.0.2.25\n",
	})
	f := newForwarder(t, Config{Upstreams: []string{srv.Addr}, HealthInterval: -1})
	c := &dns.Client{Timeout: 5 * time.Second}
	for i := range 10 {
		for _, tc := range []struct {
			name  string
			qtype uint16
		}{{"WwW.Zero.TEST.", dns.TypeA}, {"Zero.TEST.", dns.TypeMX}, {"aLias.zero.Test.", dns.TypeA}, {"nx.ZERO.test.", dns.TypeA}} {
			resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), query(tc.name, tc.qtype))
			if err != nil {
				t.Fatalf("round %d %s: %v", i, tc.name, err)
			}
			direct, _, err := c.Exchange(query(tc.name, tc.qtype), srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sections(resp), sections(direct); got != want || resp.Id != 4242 || resp.Question[0].Name != tc.name {
				t.Fatalf("round %d %s: forwarded\n%s\nwant, as NSD answers the caller's own query,\n%s", i, tc.name, got, want)
			}
		}
	}
	st := f.Upstreams()[0]
	if !st.Case0x20 || st.CaseMismatches != 0 || st.Ignored != 0 || st.TotalFailures != 0 || st.ServerCookie {
		t.Errorf("status %+v: want 0x20 on, no mismatch, nothing ignored, no failure, no server cookie", st)
	}
}

// sections renders m's rcode and records, OPT aside.
func sections(m *dns.Msg) string {
	s := dns.RcodeToString[m.Rcode] + "\n"
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype != dns.TypeOPT {
				s += fmt.Sprintln(rr.String())
			}
		}
	}
	return s
}
