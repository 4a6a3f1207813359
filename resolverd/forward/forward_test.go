package forward

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestExchangePlainRestoresID(t *testing.T) {
	rec := &recorder{next: answerA("127.0.0.7")}
	addr := startBoth(t, rec)
	f := newForwarder(t, Config{Upstreams: []string{addr}, HealthInterval: -1})

	q := query("www.Example.com.", dns.TypeA)
	before := q.Copy()
	resp, from, err := f.Exchange(ctxFor(t, 5*time.Second), q)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Id != 4242 {
		t.Errorf("answer ID %d, want the query's 4242", resp.Id)
	}
	if got := firstA(resp); got != "127.0.0.7" {
		t.Errorf("answer A %q, want 127.0.0.7", got)
	}
	if want := "udp://" + addr; from != want {
		t.Errorf("from %q, want %q", from, want)
	}
	if resp.IsEdns0() != nil {
		t.Error("answer has an OPT record, but the query had none")
	}
	if q.String() != before.String() {
		t.Error("Exchange modified the query")
	}
	qs, nets, _ := rec.snapshot()
	if len(qs) != 1 || nets[0] != "udp" {
		t.Fatalf("server saw %d queries over %v, want 1 over udp", len(qs), nets)
	}
	opt := qs[0].IsEdns0()
	if opt == nil || opt.UDPSize() != 1232 || opt.Do() {
		t.Errorf("upstream query OPT = %v, want UDP size 1232 without DO", opt)
	}
	// 0x20: the name went up in random case, the answer carries the
	// caller's spelling, in the question and in the records' owner names.
	if up := qs[0].Question[0].Name; !strings.EqualFold(up, "www.example.com.") {
		t.Errorf("upstream question %q, want www.example.com. in some case", up)
	}
	if resp.Question[0].Name != "www.Example.com." || resp.Answer[0].Header().Name != "www.Example.com." {
		t.Errorf("answer question %q, owner %q, want the caller's spelling www.Example.com.", resp.Question[0].Name, resp.Answer[0].Header().Name)
	}
}

// Names go upstream in random case, drawn afresh for each query: across
// 20 queries of a name with 20 letters the upstream sees many spellings.
func TestCaseRandomized(t *testing.T) {
	rec := &recorder{next: answerA("127.0.0.7")}
	addr := startBoth(t, rec)
	f := newForwarder(t, Config{Upstreams: []string{addr}, HealthInterval: -1})
	const name = "abcdefghij.klmnopqrst."
	for range 20 {
		resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), query(name, dns.TypeA))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Question[0].Name != name {
			t.Fatalf("answer question %q, want %q", resp.Question[0].Name, name)
		}
	}
	qs, _, _ := rec.snapshot()
	seen := map[string]bool{}
	upper := 0
	for _, q := range qs {
		n := q.Question[0].Name
		if !strings.EqualFold(n, name) {
			t.Fatalf("upstream saw %q for %q", n, name)
		}
		seen[n] = true
		for _, c := range n {
			if 'A' <= c && c <= 'Z' {
				upper++
			}
		}
	}
	// 400 letters at 1/2 each: fewer than 140 or more than 260 capitals
	// comes up less than once in 10^9 runs.
	if len(seen) != len(qs) || upper < 140 || upper > 260 {
		t.Errorf("%d spellings in %d queries, %d capitals in %d letters: want each query its own random case", len(seen), len(qs), upper, 20*len(name)-40)
	}
	if st := f.Upstreams()[0]; !st.Case0x20 || st.CaseMismatches != 0 {
		t.Errorf("status %+v, want 0x20 on and no mismatch", st)
	}
}

func TestExchangeKeepsDOAndOPT(t *testing.T) {
	rec := &recorder{next: answerA("127.0.0.7")}
	addr := startBoth(t, rec)
	f := newForwarder(t, Config{Upstreams: []string{"udp://" + addr}, HealthInterval: -1})

	q := query("example.com.", dns.TypeA)
	q.SetEdns0(4096, true)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), q)
	if err != nil {
		t.Fatal(err)
	}
	if o := resp.IsEdns0(); o == nil || !o.Do() {
		t.Errorf("answer OPT %v, want one with DO (the query had OPT with DO)", o)
	}
	qs, _, _ := rec.snapshot()
	opt := qs[0].IsEdns0()
	if opt == nil || !opt.Do() || opt.UDPSize() != 1232 {
		t.Errorf("upstream query OPT %v, want DO and size 1232", opt)
	}
	// The only option upstream is our own client cookie, never the client's.
	if len(opt.Option) != 1 || opt.Option[0].Option() != dns.EDNS0COOKIE || opt.Option[0].String() == "0102030405060708" {
		t.Errorf("upstream query options %v, want our COOKIE alone", opt.Option)
	}
	for _, o := range resp.IsEdns0().Option {
		if o.Option() == dns.EDNS0COOKIE {
			t.Errorf("the upstream's COOKIE reached the caller: %v", o)
		}
	}
}

func TestTruncatedAnswerRetriedOverTCP(t *testing.T) {
	rec := &recorder{next: dns.HandlerFunc(bigTXT)}
	addr := startBoth(t, rec)
	f := newForwarder(t, Config{Upstreams: []string{addr}, HealthInterval: -1})

	resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), query("big.example.", dns.TypeTXT))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Truncated || len(resp.Answer) != 10 {
		t.Fatalf("TC=%v with %d TXT records, want the whole RRset of 10", resp.Truncated, len(resp.Answer))
	}
	if n := resp.Len(); n <= 1232 {
		t.Errorf("answer is %d bytes, the test needs more than 1232", n)
	}
	for i, rr := range resp.Answer {
		txt := rr.(*dns.TXT).Txt[0]
		if len(txt) != 200 || txt[0] != byte('a'+i) {
			t.Errorf("TXT %d damaged: %.10q... (%d bytes)", i, txt, len(txt))
		}
	}
	if resp.Id != 4242 {
		t.Errorf("ID %d after the TCP retry, want 4242", resp.Id)
	}
	qs, nets, _ := rec.snapshot()
	if strings.Join(nets, ",") != "udp,tcp" {
		t.Fatalf("server saw transports %v, want udp then tcp", nets)
	}
	// Over TCP the name goes as asked (0x20 is for UDP).
	if n := qs[1].Question[0].Name; n != "big.example." {
		t.Errorf("TCP retry asked %q, want the name as asked", n)
	}
}

func TestTCPOnlyUpstream(t *testing.T) {
	rec := &recorder{next: answerA("127.0.0.8")}
	addr, _ := startTCP(t, "127.0.0.1:0", rec)
	f := newForwarder(t, Config{Upstreams: []string{"tcp://" + addr}, HealthInterval: -1})
	resp, from, err := f.Exchange(ctxFor(t, 5*time.Second), query("a.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if firstA(resp) != "127.0.0.8" || from != "tcp://"+addr || resp.Id != 4242 {
		t.Errorf("got A %q from %q with ID %d", firstA(resp), from, resp.Id)
	}
	if qs, nets, _ := rec.snapshot(); len(nets) != 1 || nets[0] != "tcp" || qs[0].Question[0].Name != "a.example." {
		t.Errorf("server saw %v, want one tcp query with the name as asked", nets)
	}
	if st := f.Upstreams()[0]; st.Case0x20 {
		t.Error("0x20 reported on for a TCP upstream")
	}
}

// TestOnlyMatchingReplyAccepted runs a hostile server: before the real
// answer it sends a reply with a wrong ID, one with the right ID but another
// question, a datagram that does not parse, and (from another socket) a
// reply with the right ID and question.
func TestOnlyMatchingReplyAccepted(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	spoofer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- hostile(pc, spoofer)
	}()
	t.Cleanup(func() { pc.Close(); spoofer.Close() })

	f := newForwarder(t, Config{Upstreams: []string{pc.LocalAddr().String()}, HealthInterval: -1})
	resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), query("www.example.com.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if herr := <-done; herr != nil {
		t.Fatal(herr)
	}
	if got := firstA(resp); got != "127.0.0.3" {
		t.Errorf("accepted the reply with A %q, want only the matching one (127.0.0.3)", got)
	}
	if got := f.Upstreams()[0].Ignored; got != 3 {
		t.Errorf("ignored %d datagrams, want 3 (wrong ID, wrong question, garbage)", got)
	}
}

// hostile answers one query on pc, badly at first.
func hostile(pc, spoofer net.PacketConn) error {
	buf := make([]byte, 65535)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		return err
	}
	q := new(dns.Msg)
	if err := q.Unpack(buf[:n]); err != nil {
		return err
	}
	send := func(c net.PacketConn, m *dns.Msg) error {
		b, err := m.Pack()
		if err != nil {
			return err
		}
		_, err = c.WriteTo(b, from)
		return err
	}
	// Right ID and question, but from another port: the connected socket
	// must never see it.
	if err := send(spoofer, reply(q, "127.0.0.9")); err != nil {
		return err
	}
	time.Sleep(20 * time.Millisecond)
	wrongID := reply(q, "127.0.0.1")
	wrongID.Id = q.Id + 1
	if err := send(pc, wrongID); err != nil {
		return err
	}
	other := q.Copy()
	other.Question[0].Name = "evil.example.com."
	if err := send(pc, reply(other, "127.0.0.2")); err != nil {
		return err
	}
	garbage := []byte{byte(q.Id >> 8), byte(q.Id), 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 3, 'w'}
	if _, err := pc.WriteTo(garbage, from); err != nil {
		return err
	}
	return send(pc, reply(q, "127.0.0.3"))
}

// Every query has a socket, and so a source port, of its own, and queries
// after Close still work.
func TestSourcePortVaries(t *testing.T) {
	rec := &recorder{next: answerA("127.0.0.7")}
	addr := startBoth(t, rec)
	f := newForwarder(t, Config{Upstreams: []string{addr}, HealthInterval: -1})
	const before, after = 100, 3
	for i := range before + after {
		if i == before {
			f.Close()
		}
		if _, _, err := f.Exchange(ctxFor(t, 5*time.Second), query("p.example.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	_, _, remotes := rec.snapshot()
	ports := map[int]bool{}
	for _, a := range remotes {
		ports[a.(*net.UDPAddr).Port] = true
	}
	// The kernel may hand a freed port to a new socket: among about a
	// hundred ports drawn at random from Linux's 28232 one repeat turns
	// up in one run out of five, three in one out of a thousand. A socket
	// used twice would repeat its port for a whole run of queries.
	if len(remotes) != before+after || len(ports) < len(remotes)-3 {
		t.Errorf("%d queries came from %d distinct source ports, want one socket per query", len(remotes), len(ports))
	}
}

// No socket is open before a query is sent or after it is answered: none
// waits, open to forged datagrams, for a query to come.
func TestNoSocketOpenBetweenQueries(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	rec := &recorder{next: answerA("127.0.0.7")}
	addr := startBoth(t, rec)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	base := fds()
	f, err := New(Config{Upstreams: []string{addr}, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 8 {
		if _, _, err := f.Exchange(ctxFor(t, 5*time.Second), query("c.example.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		if n := fds(); n != base {
			t.Fatalf("after query %d: %d descriptors open, %d before New", i, n, base)
		}
	}
}

func TestFailoverClosedPort(t *testing.T) {
	dead := closedUDPPort(t)
	addr := startBoth(t, answerA("127.0.0.5"))
	f := newForwarder(t, Config{Upstreams: []string{dead, addr}, Timeout: time.Second, HealthInterval: -1})
	resp, from, err := f.Exchange(ctxFor(t, 3*time.Second), query("x.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if from != "udp://"+addr || firstA(resp) != "127.0.0.5" {
		t.Errorf("answer %q from %q, want 127.0.0.5 from the second upstream", firstA(resp), from)
	}
	if st := f.Upstreams()[0]; st.Failures != 1 || !st.Healthy {
		t.Errorf("closed upstream status %+v, want 1 failure and still healthy", st)
	}
}

func TestFailoverBlackhole(t *testing.T) {
	hole, got := blackhole(t)
	addr := startBoth(t, answerA("127.0.0.5"))
	f := newForwarder(t, Config{Upstreams: []string{hole, addr}, Timeout: 300 * time.Millisecond, HealthInterval: -1})
	ctx := ctxFor(t, 3*time.Second)
	resp, from, err := f.Exchange(ctx, query("x.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("answer came after the deadline")
	}
	if from != "udp://"+addr || firstA(resp) != "127.0.0.5" {
		t.Errorf("answer %q from %q, want 127.0.0.5 from the second upstream", firstA(resp), from)
	}
	// The timeout counts against the blackhole's RTT: the next query goes
	// to the working upstream first.
	if _, from, err = f.Exchange(ctxFor(t, 3*time.Second), query("y.example.", dns.TypeA)); err != nil || from != "udp://"+addr {
		t.Fatalf("second query: from %q, err %v", from, err)
	}
	if n := got(); n != 1 {
		t.Errorf("blackhole received %d queries, want 1", n)
	}
}

func TestHealthCheckMarksDownAndUp(t *testing.T) {
	addr, stop := startUDP(t, "127.0.0.1:0", answerRcode(dns.RcodeRefused))
	f := newForwarder(t, Config{Upstreams: []string{addr}, Timeout: 200 * time.Millisecond, HealthInterval: 20 * time.Millisecond})
	healthy := func() bool { return f.Upstreams()[0].Healthy }

	// A REFUSED answer to the probe still means the server is alive.
	waitFor(t, "a successful probe", func() bool { return f.Upstreams()[0].RTT > 0 })
	if !healthy() {
		t.Fatal("upstream that answers REFUSED marked unhealthy")
	}
	stop()
	waitFor(t, "upstream marked unhealthy", func() bool { return !healthy() })
	startUDP(t, addr, answerRcode(dns.RcodeRefused))
	waitFor(t, "upstream healthy again", healthy)
	if st := f.Upstreams()[0]; st.Failures != 0 || st.TotalFailures < unhealthyAfter {
		t.Errorf("status %+v, want 0 consecutive and at least %d total failures", st, unhealthyAfter)
	}
}

func TestUnhealthyUpstreamIsLastResort(t *testing.T) {
	good := startBoth(t, answerA("127.0.0.5"))
	dead := closedUDPPort(t)
	f := newForwarder(t, Config{Upstreams: []string{good, dead}, HealthInterval: -1})
	for range unhealthyAfter {
		f.ups[0].failure(time.Second)
	}
	if order := f.order(nil); order[0] != f.ups[1] {
		t.Fatalf("unhealthy upstream ordered first")
	}
	resp, from, err := f.Exchange(ctxFor(t, 5*time.Second), query("z.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if from != "udp://"+good || firstA(resp) != "127.0.0.5" {
		t.Errorf("answer %q from %q, want the unhealthy but working upstream", firstA(resp), from)
	}
	if !f.Upstreams()[0].Healthy {
		t.Error("an answer did not make the upstream healthy again")
	}
}

func TestServfailFailsOver(t *testing.T) {
	bad := startBoth(t, answerRcode(dns.RcodeServerFailure))
	good := startBoth(t, answerA("127.0.0.6"))
	f := newForwarder(t, Config{Upstreams: []string{bad, good}, HealthInterval: -1})
	resp, from, err := f.Exchange(ctxFor(t, 5*time.Second), query("s.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if from != "udp://"+good || resp.Rcode != dns.RcodeSuccess || firstA(resp) != "127.0.0.6" {
		t.Errorf("rcode %s A %q from %q, want the second upstream's answer", dns.RcodeToString[resp.Rcode], firstA(resp), from)
	}
}

func TestAllServfailReturnsLastAnswer(t *testing.T) {
	a := startBoth(t, answerRcode(dns.RcodeServerFailure))
	b := startBoth(t, answerRcode(dns.RcodeRefused))
	f := newForwarder(t, Config{Upstreams: []string{a, b}, HealthInterval: -1})
	resp, from, err := f.Exchange(ctxFor(t, 5*time.Second), query("s.example.", dns.TypeA))
	if err != nil {
		t.Fatalf("got error %v, want the last answer", err)
	}
	if resp.Rcode != dns.RcodeRefused || from != "udp://"+b || resp.Id != 4242 {
		t.Errorf("rcode %s from %q id %d, want REFUSED from %q", dns.RcodeToString[resp.Rcode], from, resp.Id, b)
	}
	for _, st := range f.Upstreams() {
		if st.Failures != 0 {
			t.Errorf("%s: an answer counted as a failure", st.Address)
		}
	}
}

// An error reply without its question (servers may leave it out: NSD
// does for a class it does not serve) answers the query at once, with the
// question put back; it is not a timeout, and the upstream stays healthy.
// A NOERROR reply without a question answers nothing and is ignored.
func TestBareErrorReplyAccepted(t *testing.T) {
	for _, rcode := range []int{dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNotImplemented, dns.RcodeRefused} {
		up := startBoth(t, answerBare(rcode))
		f := newForwarder(t, Config{Upstreams: []string{up}, HealthInterval: -1, Timeout: 3 * time.Second})
		q := query("bare.example.", dns.TypeA)
		q.Question[0].Qclass = dns.ClassNONE
		start := time.Now()
		resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), q)
		if err != nil {
			t.Fatalf("%s: %v", dns.RcodeToString[rcode], err)
		}
		if resp.Rcode != rcode || len(resp.Question) != 1 || resp.Question[0] != q.Question[0] || resp.Id != q.Id {
			t.Errorf("%s: got rcode %s, question %v, ID %d", dns.RcodeToString[rcode], dns.RcodeToString[resp.Rcode], resp.Question, resp.Id)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s: answered after %v, as a timeout", dns.RcodeToString[rcode], took)
		}
		if st := f.Upstreams()[0]; !st.Healthy || st.Failures != 0 || st.Ignored != 0 {
			t.Errorf("%s: upstream healthy %v, %d failures, %d ignored", dns.RcodeToString[rcode], st.Healthy, st.Failures, st.Ignored)
		}
	}
	up := startBoth(t, answerBare(dns.RcodeSuccess))
	f := newForwarder(t, Config{Upstreams: []string{up}, HealthInterval: -1, Timeout: 300 * time.Millisecond})
	if resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), query("bare.example.", dns.TypeA)); err == nil {
		t.Errorf("a NOERROR reply without a question was taken: %v", resp)
	}
	if st := f.Upstreams()[0]; st.Ignored == 0 {
		t.Error("the NOERROR reply without a question was not counted as ignored")
	}
}

func TestAllFailIsError(t *testing.T) {
	d1, d2 := closedUDPPort(t), closedUDPPort(t)
	f := newForwarder(t, Config{Upstreams: []string{d1, d2}, HealthInterval: -1})
	resp, from, err := f.Exchange(ctxFor(t, 5*time.Second), query("e.example.", dns.TypeA))
	if err == nil {
		t.Fatalf("got answer %v from %q, want an error", resp, from)
	}
	for _, want := range []string{"forward:", d1, d2} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestExchangeHonoursContext(t *testing.T) {
	hole, _ := blackhole(t)
	f := newForwarder(t, Config{Upstreams: []string{hole}, Timeout: 10 * time.Second, HealthInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := f.Exchange(ctx, query("c.example.", dns.TypeA))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("want an error from a blackhole")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Exchange ignored the context deadline")
	}
	if st := f.Upstreams()[0]; st.Failures != 0 {
		t.Errorf("caller's deadline counted against the upstream: %+v", st)
	}
}

func TestExchangeRejectsBadQuery(t *testing.T) {
	f := newForwarder(t, Config{Upstreams: []string{"127.0.0.1:1"}, HealthInterval: -1})
	if _, _, err := f.Exchange(context.Background(), new(dns.Msg)); err == nil {
		t.Error("query without a question accepted")
	}
	if _, _, err := f.Exchange(context.Background(), nil); err == nil {
		t.Error("nil query accepted")
	}
}

func TestDoT(t *testing.T) {
	cert, pool := selfSigned(t)
	rec := &recorder{next: answerA("127.0.0.4")}
	addr := startTLS(t, rec, cert)

	for _, up := range []string{"tls://" + addr, "tls://" + addr + "#dns.test"} {
		f := newForwarder(t, Config{Upstreams: []string{up}, HealthInterval: -1, TLSConfig: &tls.Config{RootCAs: pool}})
		resp, from, err := f.Exchange(ctxFor(t, 5*time.Second), query("tls.example.", dns.TypeA))
		if err != nil {
			t.Fatalf("%s: %v", up, err)
		}
		if from != up || firstA(resp) != "127.0.0.4" || resp.Id != 4242 {
			t.Errorf("%s: A %q from %q id %d", up, firstA(resp), from, resp.Id)
		}
	}
	if _, nets, _ := rec.snapshot(); len(nets) != 2 {
		t.Errorf("server saw %d queries, want 2", len(nets))
	}

	// Verification is on: a wrong name or an untrusted certificate fails.
	for _, cfg := range []Config{
		{Upstreams: []string{"tls://" + addr + "#other.test"}, TLSConfig: &tls.Config{RootCAs: pool}},
		{Upstreams: []string{"tls://" + addr}},
	} {
		cfg.HealthInterval = -1
		f := newForwarder(t, cfg)
		if _, _, err := f.Exchange(ctxFor(t, 5*time.Second), query("tls.example.", dns.TypeA)); err == nil {
			t.Errorf("%v: want a certificate error", cfg.Upstreams)
		}
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	f, err := New(Config{Upstreams: []string{"127.0.0.1:1"}, HealthInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Upstreams: []string{"127.0.0.1", "udp://127.0.0.1:53"}},
		{Upstreams: []string{"127.0.0.1", "bogus"}},
	} {
		if f, err := New(cfg); err == nil {
			f.Close()
			t.Errorf("New(%v) succeeded, want an error", cfg.Upstreams)
		} else if !strings.HasPrefix(err.Error(), "forward: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
}

func TestCollectorReportsUpstreams(t *testing.T) {
	addr := startBoth(t, answerA("192.0.2.1"))
	f, err := New(Config{Upstreams: []string{addr}, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	q := new(dns.Msg)
	q.SetQuestion("a.example.", dns.TypeA)
	if _, _, err := f.Exchange(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			got[mf.GetName()] = v
		}
	}
	if got["shardns_upstream_healthy"] != 1 || got["shardns_upstream_rtt_seconds"] <= 0 {
		t.Errorf("metrics %v: want a healthy upstream with an RTT", got)
	}
}
