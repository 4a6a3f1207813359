package forward

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// lowering answers as a server that does not keep case would: the question
// and the owner names come back in lower case, while lower(n) (n counts
// queries from 1) says so; otherwise it echoes the name exactly.
func lowering(ip string, lower func(n int) bool) dns.HandlerFunc {
	var n atomic.Int64
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := reply(r, ip)
		if lower(int(n.Add(1))) {
			m.Question[0].Name = strings.ToLower(m.Question[0].Name)
			for _, rr := range m.Answer {
				rr.Header().Name = strings.ToLower(rr.Header().Name)
			}
		}
		_ = w.WriteMsg(m)
	}
}

// An upstream that lowercases names gives replies that match but for case:
// none is taken at first sight, each query is sent again at once without
// 0x20 and answered, and after caseOffAfter of them 0x20 is off for that
// upstream alone, with one warning and the metrics saying so.
func TestCaseNotKeptTurnsOff0x20(t *testing.T) {
	recLow := &recorder{next: lowering("192.0.2.1", func(int) bool { return true })}
	low := startBoth(t, recLow)
	keeps := startBoth(t, answerA("192.0.2.2"))
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	f := newForwarder(t, Config{Upstreams: []string{low, keeps}, HealthInterval: -1, Logger: log})

	const name = "Www.Example.COM."
	for i := range caseOffAfter + 2 {
		resp, _, err := f.attempt(ctxFor(t, 5*time.Second), f.ups[0], query(name, dns.TypeA))
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if firstA(resp) != "192.0.2.1" || resp.Question[0].Name != name || resp.Answer[0].Header().Name != name {
			t.Fatalf("query %d: A %q, question %v", i, firstA(resp), resp.Question)
		}
	}
	qs, _, _ := recLow.snapshot()
	// caseOffAfter queries took two sends each (0x20, then as asked), the
	// others one, as asked.
	if len(qs) != 2*caseOffAfter+2 {
		t.Fatalf("upstream saw %d queries, want %d", len(qs), 2*caseOffAfter+2)
	}
	for i, q := range qs {
		if i%2 == 1 || i >= 2*caseOffAfter {
			if q.Question[0].Name != name {
				t.Errorf("send %d asked %q, want the name as asked", i, q.Question[0].Name)
			}
		}
	}
	st := f.Upstreams()
	if st[0].Case0x20 || st[0].CaseMismatches != caseOffAfter || st[0].Failures != 0 || st[0].Ignored != 0 {
		t.Errorf("lowering upstream %+v: want 0x20 off after %d mismatches, no failure, nothing ignored", st[0], caseOffAfter)
	}
	if !st[1].Case0x20 {
		t.Error("0x20 turned off for the other upstream too")
	}
	if n := strings.Count(logs.String(), "0x20 turned off"); n != 1 || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("want one warning, got logs:\n%s", logs.String())
	}
	got := gather(t, f)
	if got["shardns_upstream_0x20{udp://"+low+"}"] != 0 || got["shardns_upstream_0x20{udp://"+keeps+"}"] != 1 ||
		got["shardns_upstream_case_mismatches_total{udp://"+low+"}"] != caseOffAfter {
		t.Errorf("metrics %v", got)
	}
}

// A reply in the wrong case is not the answer even when it comes first with
// the right ID (a forger's lucky guess), and an exact echo between two such
// replies keeps 0x20 on.
func TestCaseMismatchNotTaken(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	const forged = "Forgedforgedforged.example."
	// For each 0x20 query: a lowercased reply carrying a forged address.
	// For each query sent again as asked: the real answer. Queries whose
	// name the test marks "exact" are answered exactly.
	go func() {
		buf := make([]byte, 65535)
		for range 100 {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			name := q.Question[0].Name
			var m *dns.Msg
			switch {
			case strings.HasPrefix(strings.ToLower(name), "exact"):
				m = reply(q, "192.0.2.1")
			case name == forged:
				m = reply(q, "192.0.2.1") // sent without 0x20: the real answer
			default:
				m = reply(q, "198.51.100.66")
				m.Question[0].Name = strings.ToLower(name)
			}
			b, _ := m.Pack()
			_, _ = pc.WriteTo(b, from)
		}
	}()
	f := newForwarder(t, Config{Upstreams: []string{pc.LocalAddr().String()}, HealthInterval: -1})
	for i, name := range []string{forged, "exact.example.", forged, "exact.example.", forged, "exact.example."} {
		resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), query(name, dns.TypeA))
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if got := firstA(resp); got != "192.0.2.1" {
			t.Fatalf("query %d (%s): took A %s, want the real 192.0.2.1", i, name, got)
		}
	}
	if st := f.Upstreams()[0]; !st.Case0x20 || st.CaseMismatches != 3 {
		t.Errorf("status %+v: want 3 mismatches, each followed by an exact echo, and 0x20 still on", st)
	}
}

// cookieServer implements server cookies (RFC 7873 §5.2): a server cookie
// is an HMAC of the client cookie and the client's address under a secret.
// With require set it answers BADCOOKIE, with a fresh server cookie, to a
// query without a valid one, as BIND's require-server-cookie does.
type cookieServer struct {
	ip      string
	require bool
	secret  atomic.Value // []byte

	mu    sync.Mutex
	seen  []string // the COOKIE option of each query (hex, "" for none)
	valid []bool   // whether it carried a valid server cookie
}

func newCookieServer(ip string, require bool) *cookieServer {
	s := &cookieServer{ip: ip, require: require}
	s.secret.Store([]byte("first secret"))
	return s
}

func (s *cookieServer) serverCookie(client string, addr net.Addr) string {
	h := hmac.New(sha256.New, s.secret.Load().([]byte))
	h.Write([]byte(client))
	host, _, _ := net.SplitHostPort(addr.String())
	h.Write([]byte(host))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (s *cookieServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	var cookie string
	if o := r.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if c, ok := e.(*dns.EDNS0_COOKIE); ok {
				cookie = c.Cookie
			}
		}
	}
	valid := len(cookie) > 16 && hmac.Equal([]byte(cookie[16:]), []byte(s.serverCookie(cookie[:16], w.RemoteAddr())))
	s.mu.Lock()
	s.seen = append(s.seen, cookie)
	s.valid = append(s.valid, valid)
	s.mu.Unlock()
	var m *dns.Msg
	if s.require && !valid && cookie != "" {
		m = new(dns.Msg)
		m.SetRcode(r, dns.RcodeBadCookie)
		m.SetEdns0(1232, false)
	} else {
		m = reply(r, s.ip)
		if m.IsEdns0() == nil {
			m.SetEdns0(1232, false)
		}
	}
	if cookie != "" {
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: cookie[:16] + s.serverCookie(cookie[:16], w.RemoteAddr())})
	}
	_ = w.WriteMsg(m)
}

func (s *cookieServer) snapshot() ([]string, []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...), append([]bool(nil), s.valid...)
}

// The forwarder sends one 8-byte client cookie per upstream, learns the
// server cookie from the first reply and sends it on later queries; the
// caller never sees the cookie. Over UDP and over TCP.
func TestCookieLearned(t *testing.T) {
	for _, scheme := range []string{"udp://", "tcp://"} {
		srv := newCookieServer("192.0.2.9", false)
		addr := startBoth(t, srv)
		f := newForwarder(t, Config{Upstreams: []string{scheme + addr}, HealthInterval: -1})
		for i := range 3 {
			q := query("c.example.", dns.TypeA)
			q.SetEdns0(1232, false)
			resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), q)
			if err != nil {
				t.Fatalf("%s query %d: %v", scheme, i, err)
			}
			if firstA(resp) != "192.0.2.9" {
				t.Fatalf("%s query %d: A %q", scheme, i, firstA(resp))
			}
			for _, o := range resp.IsEdns0().Option {
				if o.Option() == dns.EDNS0COOKIE {
					t.Errorf("%s: the caller got the upstream's cookie", scheme)
				}
			}
		}
		seen, valid := srv.snapshot()
		if len(seen) != 3 || len(seen[0]) != 16 || valid[0] || !valid[1] || !valid[2] || seen[1][:16] != seen[0] || seen[2] != seen[1] {
			t.Errorf("%s: server saw cookies %q (valid %v): want a client cookie alone, then it with the server's", scheme, seen, valid)
		}
		if st := f.Upstreams()[0]; !st.ServerCookie || st.Ignored != 0 {
			t.Errorf("%s: status %+v", scheme, st)
		}
	}
}

// BADCOOKIE with a fresh server cookie is retried once with it: on the
// first query, and again after the server changes its secret.
func TestBadCookieRetried(t *testing.T) {
	srv := newCookieServer("192.0.2.9", true)
	addr := startBoth(t, srv)
	f := newForwarder(t, Config{Upstreams: []string{addr}, HealthInterval: -1})
	ask := func() {
		t.Helper()
		resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), query("c.example.", dns.TypeA))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Rcode != dns.RcodeSuccess || firstA(resp) != "192.0.2.9" {
			t.Fatalf("rcode %s, A %q", dns.RcodeToString[resp.Rcode], firstA(resp))
		}
	}
	ask()
	ask()
	srv.secret.Store([]byte("second secret"))
	ask()
	_, valid := srv.snapshot()
	if want := []bool{false, true, true, false, true}; !slicesEqual(valid, want) {
		t.Errorf("server cookie valid per query %v, want %v", valid, want)
	}
	if st := f.Upstreams()[0]; st.Failures != 0 || st.Ignored != 0 {
		t.Errorf("status %+v", st)
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// An upstream that answers BADCOOKIE to the server cookie it just gave is
// asked twice, then the attempt fails.
func TestBadCookieTwiceFails(t *testing.T) {
	var n atomic.Int64
	addr := startBoth(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeBadCookie)
		m.SetEdns0(1232, false)
		c := r.IsEdns0().Option[0].(*dns.EDNS0_COOKIE)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: c.Cookie[:16] + strings.Repeat("0", 15) + string(rune('a'+n.Add(1)))})
		_ = w.WriteMsg(m)
	}))
	f := newForwarder(t, Config{Upstreams: []string{addr}, HealthInterval: -1})
	if resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), query("c.example.", dns.TypeA)); err == nil || !strings.Contains(err.Error(), "BADCOOKIE") {
		t.Fatalf("got %v, %v: want a BADCOOKIE error", resp, err)
	}
	if n.Load() != 2 {
		t.Errorf("upstream asked %d times, want 2", n.Load())
	}
}

// Replies with the right ID and question but another client's cookie, a
// malformed cookie, or BADCOOKIE without a cookie are not answers: they
// are counted and the real reply after them is taken.
func TestForeignCookieIgnored(t *testing.T) {
	addr := startBoth(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		ours := r.IsEdns0().Option[0].(*dns.EDNS0_COOKIE).Cookie
		send := func(cookie string, rcode int) {
			m := reply(r, "198.51.100.66")
			m.Rcode = rcode
			if cookie != "" {
				m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: cookie})
			}
			_ = w.WriteMsg(m)
		}
		send("0102030405060708"+"1112131415161718", dns.RcodeSuccess) // another client's
		send(ours, dns.RcodeSuccess)                                  // no server cookie: malformed in a reply
		send(ours+"11", dns.RcodeSuccess)                             // server cookie too short
		send("", dns.RcodeBadCookie)                                  // BADCOOKIE without a cookie
		_ = w.WriteMsg(reply(r, "192.0.2.1"))
	}))
	f := newForwarder(t, Config{Upstreams: []string{addr}, HealthInterval: -1})
	resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), query("c.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if got := firstA(resp); got != "192.0.2.1" {
		t.Errorf("took A %s, want the real 192.0.2.1", got)
	}
	if st := f.Upstreams()[0]; st.Ignored != 4 || st.ServerCookie {
		t.Errorf("status %+v: want 4 ignored and no server cookie learnt", st)
	}
}

// setAD answers with AD set, as a validating upstream does.
func setAD(w dns.ResponseWriter, r *dns.Msg) {
	m := reply(r, "192.0.2.1")
	m.AuthenticatedData = true
	_ = w.WriteMsg(m)
}

// AD is passed on only from a trusted upstream: one listed in Trusted, or
// a tls:// one. Plain UDP and TCP upstreams' AD is cleared.
func TestADOnlyFromTrusted(t *testing.T) {
	cert, pool := selfSigned(t)
	udp := startBoth(t, dns.HandlerFunc(setAD))
	tlsAddr := startTLS(t, dns.HandlerFunc(setAD), cert)
	cases := []struct {
		up      string
		trusted []string
		wantAD  bool
	}{
		{udp, nil, false},
		{"tcp://" + udp, nil, false},
		{udp, []string{"udp://" + udp}, true},
		{"tcp://" + udp, []string{"tcp://" + udp}, true},
		{"tls://" + tlsAddr, nil, true},
	}
	for _, tc := range cases {
		f := newForwarder(t, Config{Upstreams: []string{tc.up}, Trusted: tc.trusted, HealthInterval: -1, TLSConfig: &tls.Config{RootCAs: pool}})
		q := query("ad.example.", dns.TypeA)
		q.SetEdns0(1232, true)
		q.AuthenticatedData = true
		resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), q)
		if err != nil {
			t.Fatalf("%s: %v", tc.up, err)
		}
		if resp.AuthenticatedData != tc.wantAD {
			t.Errorf("%s trusted %v: AD %v, want %v", tc.up, tc.trusted, resp.AuthenticatedData, tc.wantAD)
		}
		if st := f.Upstreams()[0]; st.Trusted != tc.wantAD {
			t.Errorf("%s: status Trusted %v", tc.up, st.Trusted)
		}
	}
}

func TestTrustedMustBeAnUpstream(t *testing.T) {
	for _, cfg := range []Config{
		{Upstreams: []string{"127.0.0.1:5300"}, Trusted: []string{"127.0.0.1:5301"}},
		{Upstreams: []string{"127.0.0.1:5300"}, Trusted: []string{"tcp://127.0.0.1:5300"}},
		{Upstreams: []string{"127.0.0.1:5300"}, Trusted: []string{"bogus"}},
	} {
		cfg.HealthInterval = -1
		if f, err := New(cfg); err == nil {
			f.Close()
			t.Errorf("New with Trusted %v accepted", cfg.Trusted)
		} else if !strings.HasPrefix(err.Error(), "forward: ") || !strings.Contains(err.Error(), "trusted") {
			t.Errorf("error %q", err)
		}
	}
	// Written differently but the same upstream.
	f := newForwarder(t, Config{Upstreams: []string{"udp://127.0.0.1:53"}, Trusted: []string{"127.0.0.1"}, HealthInterval: -1})
	if !f.Upstreams()[0].Trusted {
		t.Error("127.0.0.1 did not name udp://127.0.0.1:53")
	}
}

// Health probes follow the query's rules: a datagram that is not the reply
// is ignored and the probe succeeds on the real one.
func TestProbeIgnoresStrayDatagrams(t *testing.T) {
	addr := startBoth(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		wrong := reply(r, "198.51.100.66")
		wrong.Id ^= 0x5555
		_ = w.WriteMsg(wrong)
		time.Sleep(5 * time.Millisecond)
		m := new(dns.Msg)
		m.SetReply(r)
		_ = w.WriteMsg(m)
	}))
	f := newForwarder(t, Config{Upstreams: []string{addr}, Timeout: time.Second, HealthInterval: 20 * time.Millisecond})
	waitFor(t, "two probes", func() bool { return f.Upstreams()[0].Ignored >= 2 })
	if st := f.Upstreams()[0]; st.TotalFailures != 0 || !st.Healthy || st.RTT == 0 {
		t.Errorf("status %+v: want healthy, no failure", st)
	}
}

// gather reads f's collector into "name{upstream}" → value.
func gather(t *testing.T, f *Forwarder) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			upstream := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "upstream" {
					upstream = l.GetValue()
				}
			}
			got[mf.GetName()+"{"+upstream+"}"] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return got
}
