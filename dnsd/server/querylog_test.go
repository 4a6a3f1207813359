package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/acl"
	"github.com/shardns/shardns/dnsd/server"
	"github.com/shardns/shardns/internal/dnstaplog"
	"github.com/shardns/shardns/internal/querylog"
	"github.com/shardns/shardns/internal/testutil/dnstaptest"
)

// asked is one query a test sent and what came back.
type asked struct {
	network string
	local   string // the client's address:port
	q       *dns.Msg
	r       *dns.Msg
	size    int    // r's bytes
	source  string // what the query log should say answered it
}

// ask sends wire (any bytes) from ip over network to addr on a connection
// of its own and reads one reply, of size bytes.
func ask(t *testing.T, network, ip, addr string, wire []byte) (local string, reply *dns.Msg, size int) {
	t.Helper()
	d := net.Dialer{Timeout: clientTimeout}
	if network == "udp" {
		d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(ip)}
	} else {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	c, err := d.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dc := &dns.Conn{Conn: c, UDPSize: 65535}
	_ = c.SetDeadline(time.Now().Add(clientTimeout))
	if _, err := dc.Write(wire); err != nil {
		t.Fatal(err)
	}
	raw, err := dc.ReadMsgHeader(nil)
	if err != nil {
		t.Fatalf("%s from %s: %v", network, ip, err)
	}
	return c.LocalAddr().String(), unpack(t, raw), len(raw)
}

// Every query dnsd answers, over UDP and TCP, a miss, a hit (answered by
// the reading goroutine, or by a worker over TCP), a refusal and a
// FORMERR, is in dnstap as a CLIENT_QUERY and a CLIENT_RESPONSE that
// match it (read with the library and with dnstap-read), and is one line
// of the query log.
func TestQueryLogs(t *testing.T) {
	dir := t.TempDir()
	tapPath, logPath := filepath.Join(dir, "dnsd.tap"), filepath.Join(dir, "query.log")
	tap, err := dnstaplog.Open(dnstaplog.Config{Target: tapPath, Identity: "dnsd.test"})
	if err != nil {
		t.Fatal(err)
	}
	qlog, err := querylog.Open(querylog.Config{Path: logPath})
	if err != nil {
		t.Fatal(err)
	}
	a, err := acl.Parse("127.0.0.1/32")
	if err != nil {
		t.Fatal(err)
	}
	auth := startAuth(t)
	srv := server.New(server.Config{
		Chain: newChain(options{}, newResolver(t, auth.addr, 0)), ACL: a,
		Dnstap: tap, QueryLog: qlog,
	})
	if err := srv.Listen([]string{"127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	addrs := srv.Addrs()
	udp, tcp := addrs[0].String(), addrs[1].String()

	var all []asked
	send := func(network, ip string, q *dns.Msg, wire []byte, source string) {
		if wire == nil {
			wire = pack(t, q)
		}
		to := udp
		if network == "tcp" {
			to = tcp
		}
		local, r, size := ask(t, network, ip, to, wire)
		all = append(all, asked{network: network, local: local, q: q, r: r, size: size, source: source})
	}
	send("udp", "127.0.0.1", query("miss.example.com.", dns.TypeA, 101), nil, "resolver")
	send("udp", "127.0.0.1", query("miss.example.com.", dns.TypeA, 102), nil, "l1") // the reading goroutine's hit
	send("tcp", "127.0.0.1", query("tcp.example.com.", dns.TypeMX, 103), nil, "resolver")
	send("tcp", "127.0.0.1", query("miss.example.com.", dns.TypeA, 104), nil, "l1") // a worker's hit
	send("udp", "127.0.0.3", query("refused.example.com.", dns.TypeA, 105), nil, "refused")
	garbage := []byte{0, 106, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a', 'b'} // a question cut short
	send("udp", "127.0.0.1", nil, garbage, "formerr")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	if err := qlog.Close(); err != nil {
		t.Fatal(err)
	}

	rcode := func(x asked) int { return x.r.Rcode }
	wantRcode := []int{dns.RcodeSuccess, dns.RcodeSuccess, dns.RcodeSuccess, dns.RcodeSuccess, dns.RcodeRefused, dns.RcodeFormatError}
	for i, x := range all {
		if rcode(x) != wantRcode[i] {
			t.Fatalf("query %d: rcode %s, want %s", i, dns.RcodeToString[rcode(x)], dns.RcodeToString[wantRcode[i]])
		}
	}

	frames := dnstaptest.ReadFile(t, tapPath)
	if len(frames) != 2*len(all) {
		t.Fatalf("%d dnstap messages, want %d", len(frames), 2*len(all))
	}
	for i, x := range all {
		cq, cr := frames[2*i], frames[2*i+1]
		if cq.Type() != "CLIENT_QUERY" || cr.Type() != "CLIENT_RESPONSE" {
			t.Fatalf("exchange %d: %s then %s", i, cq.Type(), cr.Type())
		}
		wantProto := strings.ToUpper(x.network)
		for _, f := range []dnstaptest.Frame{cq, cr} {
			m := f.Message
			from, _ := net.ResolveUDPAddr("udp", x.local)
			if !net.IP(m.QueryAddress).Equal(from.IP) || int(m.GetQueryPort()) != from.Port || m.GetSocketProtocol().String() != wantProto {
				t.Errorf("exchange %d %s: from %v:%d over %s, want %s over %s", i, f.Type(), net.IP(m.QueryAddress), m.GetQueryPort(), m.GetSocketProtocol(), x.local, wantProto)
			}
			if string(f.Identity) != "dnsd.test" {
				t.Errorf("identity %q", f.Identity)
			}
		}
		if x.q == nil { // the FORMERR: the bytes as sent, the reply as received
			if string(cq.Message.QueryMessage) != string(garbage) || cr.Msg.Id != 106 || cr.Msg.Rcode != dns.RcodeFormatError {
				t.Errorf("FORMERR exchange: query %v, response %v", cq.Message.QueryMessage, cr.Msg)
			}
			continue
		}
		if cq.Msg.Id != x.q.Id || cq.Msg.Question[0] != x.q.Question[0] || cq.Msg.Response {
			t.Errorf("exchange %d: CLIENT_QUERY %v, want %v", i, cq.Msg.Question, x.q.Question)
		}
		if cr.Msg.Id != x.q.Id || !cr.Msg.Response || cr.Msg.Question[0] != x.q.Question[0] || cr.Msg.Rcode != x.r.Rcode || len(cr.Msg.Answer) != len(x.r.Answer) {
			t.Errorf("exchange %d: CLIENT_RESPONSE %v, want the reply %v", i, cr.Msg, x.r)
		}
		qt := time.Unix(int64(cr.Message.GetQueryTimeSec()), int64(cr.Message.GetQueryTimeNsec()))
		rt := time.Unix(int64(cr.Message.GetResponseTimeSec()), int64(cr.Message.GetResponseTimeNsec()))
		if rt.Before(qt) || rt.Sub(qt) > clientTimeout {
			t.Errorf("exchange %d: query time %v, response time %v", i, qt, rt)
		}
	}

	// dnstap-read stops at a message whose DNS part does not parse: the
	// garbage, last, is the last it prints.
	docs := dnstaptest.ReadTool(t, tapPath)
	if len(docs) != len(frames)-1 {
		t.Fatalf("dnstap-read printed %d messages, want %d", len(docs), len(frames)-1)
	}
	for i, x := range all[:len(all)-1] {
		cq, cr := docs[2*i].Message, docs[2*i+1].Message
		host, port, _ := net.SplitHostPort(x.local)
		if cq.Type != "CLIENT_QUERY" || cr.Type != "CLIENT_RESPONSE" || cq.QueryAddress != host || port != itoa(cq.QueryPort) || cr.QueryAddress != host {
			t.Errorf("dnstap-read exchange %d: %+v / %+v, want from %s", i, cq, cr, x.local)
		}
		if x.q == nil {
			continue
		}
		wantQ := x.q.Question[0].Name + " IN " + dns.TypeToString[x.q.Question[0].Qtype]
		if cq.Query == nil || cr.Response == nil || len(cq.Query.Question) != 1 || cq.Query.Question[0] != wantQ ||
			len(cr.Response.Question) != 1 || cr.Response.Question[0] != wantQ ||
			cq.Query.ID != x.q.Id || cr.Response.ID != x.q.Id || cr.Response.Status != dns.RcodeToString[x.r.Rcode] {
			t.Errorf("dnstap-read exchange %d: query %+v response %+v, want %s", i, cq.Query, cr.Response, wantQ)
		}
	}

	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []querylog.Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e querylog.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		lines = append(lines, e)
	}
	if len(lines) != len(all) {
		t.Fatalf("%d query log lines, want %d", len(lines), len(all))
	}
	for i, x := range all {
		e := lines[i]
		want := querylog.Entry{Time: e.Time, Client: x.local, Proto: x.network, Rcode: dns.RcodeToString[x.r.Rcode], Source: x.source, DurationUS: e.DurationUS, Size: x.size}
		if x.q != nil {
			want.QName, want.QType = x.q.Question[0].Name, dns.TypeToString[x.q.Question[0].Qtype]
		}
		if e != want || e.DurationUS < 0 || time.Since(e.Time) > time.Minute {
			t.Errorf("line %d:\n got %+v\nwant %+v", i, e, want)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Each log works without the other: the query log alone gets every
// answered query, sampled as asked.
func TestQueryLogAlone(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "query.log")
	qlog, err := querylog.Open(querylog.Config{Path: logPath, Sample: 2})
	if err != nil {
		t.Fatal(err)
	}
	auth := startAuth(t)
	srv := server.New(server.Config{Chain: newChain(options{}, newResolver(t, auth.addr, 0)), QueryLog: qlog})
	if err := srv.Listen([]string{"127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	udp := srv.Addrs()[0].String()
	for i := range 6 {
		ask(t, "udp", "127.0.0.1", udp, pack(t, query("alone.example.com.", dns.TypeA, uint16(i))))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := qlog.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"qname":"alone.example.com."`); n != 3 {
		t.Errorf("%d lines for 6 queries sampled 1 in 2, want 3:\n%s", n, b)
	}
}
