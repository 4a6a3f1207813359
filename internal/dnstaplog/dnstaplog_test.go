package dnstaplog_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/shardns/shardns/internal/dnstaplog"
	"github.com/shardns/shardns/internal/testutil/dnstaptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair is a query for name and a reply to it with one A record.
func pair(t testing.TB, name string, id uint16) (q, r []byte) {
	t.Helper()
	qm := new(dns.Msg)
	qm.SetQuestion(name, dns.TypeA)
	qm.Id = id
	rm := new(dns.Msg)
	rm.SetReply(qm)
	rr, err := dns.NewRR(name + " 60 IN A 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	rm.Answer = []dns.RR{rr}
	q, err = qm.Pack()
	if err != nil {
		t.Fatal(err)
	}
	r, err = rm.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return q, r
}

// Messages written to a file read back, with the library and with
// dnstap-read, as what was logged: types, addresses, ports, protocol,
// times, identity and the DNS messages.
func TestFileReadsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.tap")
	l, err := dnstaplog.Open(dnstaplog.Config{Target: path, Identity: "ns1.test", Version: "shardns-test"})
	if err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort("127.0.0.7:40000")
	upstream := netip.MustParseAddrPort("[::1]:5300")
	t0 := time.Unix(1_700_000_000, 123_456_789)
	q1, r1 := pair(t, "one.test.", 1)
	q2, r2 := pair(t, "two.test.", 2)
	l.Client(dnstaplog.UDP, client, t0, t0.Add(time.Millisecond), q1, r1)
	l.Exchanged(dnstaplog.TCP, upstream, t0, t0.Add(2*time.Millisecond), q2, r2)
	l.Exchanged(dnstaplog.UDP, upstream, t0, t0.Add(3*time.Millisecond), q2, nil) // no answer
	l.Client(dnstaplog.DoQ, client, t0, t0, q1, r1)
	q1[12] = 'X' // the logger keeps its own copy
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	fs := dnstaptest.ReadFile(t, path)
	want := []struct {
		typ, name, proto string
		resp             bool
	}{
		{"CLIENT_QUERY", "one.test.", "UDP", false},
		{"CLIENT_RESPONSE", "one.test.", "UDP", true},
		{"RESOLVER_QUERY", "two.test.", "TCP", false},
		{"RESOLVER_RESPONSE", "two.test.", "TCP", true},
		{"RESOLVER_QUERY", "two.test.", "UDP", false},
		{"CLIENT_QUERY", "one.test.", "7", false},
		{"CLIENT_RESPONSE", "one.test.", "7", true},
	}
	if len(fs) != len(want) {
		t.Fatalf("read %d frames, want %d", len(fs), len(want))
	}
	for i, w := range want {
		f := fs[i]
		m := f.Message
		if f.Type() != w.typ || f.Msg.Question[0].Name != w.name || f.Msg.Response != w.resp {
			t.Errorf("frame %d: %s %s response=%v, want %s %s %v", i, f.Type(), f.Msg.Question[0].Name, f.Msg.Response, w.typ, w.name, w.resp)
		}
		if got := m.GetSocketProtocol().String(); got != w.proto {
			t.Errorf("frame %d: protocol %s, want %s", i, got, w.proto)
		}
		if string(f.Identity) != "ns1.test" || string(f.Version) != "shardns-test" {
			t.Errorf("frame %d: identity %q version %q", i, f.Identity, f.Version)
		}
		if m.GetQueryTimeSec() != uint64(t0.Unix()) || m.GetQueryTimeNsec() != uint32(t0.Nanosecond()) {
			t.Errorf("frame %d: query time %d.%09d, want %d.%09d", i, m.GetQueryTimeSec(), m.GetQueryTimeNsec(), t0.Unix(), t0.Nanosecond())
		}
		if strings.HasPrefix(w.typ, "CLIENT") {
			if a, _ := netip.AddrFromSlice(m.QueryAddress); a != client.Addr() || m.GetQueryPort() != uint32(client.Port()) {
				t.Errorf("frame %d: query address %v port %d, want %v", i, a, m.GetQueryPort(), client)
			}
		} else if a, _ := netip.AddrFromSlice(m.ResponseAddress); a != upstream.Addr() || m.GetResponsePort() != uint32(upstream.Port()) {
			t.Errorf("frame %d: response address %v port %d, want %v", i, a, m.GetResponsePort(), upstream)
		}
	}
	if rt := fs[3].Message; rt.GetResponseTimeSec() != uint64(t0.Unix()) || rt.GetResponseTimeNsec() != uint32(t0.Add(2*time.Millisecond).Nanosecond()) {
		t.Errorf("RESOLVER_RESPONSE time %d.%09d", rt.GetResponseTimeSec(), rt.GetResponseTimeNsec())
	}

	docs := dnstaptest.ReadTool(t, path)
	if len(docs) != len(want) {
		t.Fatalf("dnstap-read printed %d messages, want %d", len(docs), len(want))
	}
	for i, w := range want[:5] { // dnstap-read names the protocols it knows
		d := docs[i]
		data := d.Message.Query
		if w.resp {
			data = d.Message.Response
		}
		if d.Message.Type != w.typ || d.Message.SocketProtocol != w.proto || d.Identity != "ns1.test" || data == nil ||
			len(data.Question) != 1 || data.Question[0] != strings.TrimSuffix(w.name, ".")+". IN A" {
			t.Errorf("dnstap-read message %d: %+v, want %s %s %s", i, d, w.typ, w.proto, w.name)
		}
	}
	if d := docs[0].Message; d.QueryAddress != "127.0.0.7" || d.QueryPort != 40000 || d.SocketFamily != "INET" {
		t.Errorf("dnstap-read CLIENT_QUERY from %s port %d (%s), want 127.0.0.7 port 40000", d.QueryAddress, d.QueryPort, d.SocketFamily)
	}
	if d := docs[3].Message; d.ResponseAddress != "::1" || d.ResponsePort != 5300 || d.SocketFamily != "INET6" ||
		len(d.Response.Answer) != 1 || !strings.Contains(d.Response.Answer[0], "192.0.2.1") {
		t.Errorf("dnstap-read RESOLVER_RESPONSE: %+v", d)
	}
}

// Identity defaults to the host name, version to shardns.
func TestDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.tap")
	l, err := dnstaplog.Open(dnstaplog.Config{Target: path})
	if err != nil {
		t.Fatal(err)
	}
	q, r := pair(t, "a.test.", 1)
	l.Client(dnstaplog.TCP, netip.MustParseAddrPort("[2001:db8::1]:1"), time.Now(), time.Now(), q, r)
	l.Close()
	host, _ := os.Hostname()
	fs := dnstaptest.ReadFile(t, path)
	if len(fs) != 2 || string(fs[0].Identity) != host || !strings.HasPrefix(string(fs[0].Version), "shardns") {
		t.Fatalf("frames %d, identity %q (host %q), version %q", len(fs), fs[0].Identity, host, fs[0].Version)
	}
	if fs[0].Message.GetSocketFamily().String() != "INET6" {
		t.Errorf("family %s, want INET6", fs[0].Message.GetSocketFamily())
	}
}

func TestOpenErrors(t *testing.T) {
	for _, target := range []string{"", "unix:", filepath.Join(t.TempDir(), "no", "such", "dir", "x.tap")} {
		l, err := dnstaplog.Open(dnstaplog.Config{Target: target})
		if err == nil {
			l.Close()
			t.Errorf("Open(%q) succeeded", target)
			continue
		}
		if !strings.HasPrefix(err.Error(), "dnstap: ") {
			t.Errorf("Open(%q): %v, want a dnstap: prefix", target, err)
		}
	}
}

// A collector that goes away and comes back: messages logged before
// reach the first, those logged while it is away are dropped and counted
// once the queue is full, and those logged after reach the second. The
// logger never blocks the caller meanwhile.
func TestSocketCollectorRestart(t *testing.T) {
	dir, err := os.MkdirTemp("", "tap") // short: a socket path is at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	col := dnstaptest.NewCollector(t, sock)
	col.Start()
	reg := prometheus.NewRegistry()
	const queue = 16
	l, err := dnstaplog.Open(dnstaplog.Config{Target: "unix:" + sock, Queue: queue, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client := netip.MustParseAddrPort("127.0.0.1:1000")
	send := func(prefix string, n int) {
		for i := range n {
			q, r := pair(t, fmt.Sprintf("%s%d.test.", prefix, i), uint16(i))
			l.Client(dnstaplog.UDP, client, time.Now(), time.Now(), q, r)
		}
	}
	send("before", 5)
	for i := range 10 {
		f := col.Next(5 * time.Second)
		want := fmt.Sprintf("before%d.test.", i/2)
		if f.Msg.Question[0].Name != want {
			t.Fatalf("frame %d: %s %s, want %s", i, f.Type(), f.Msg.Question[0].Name, want)
		}
	}

	col.Stop()
	// The logger learns of the loss on its next write; until it does,
	// what it writes is lost in the closed socket. Keep logging until it
	// counts drops (the queue full while it redials).
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; l.Dropped() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("nothing dropped with the collector away")
		}
		start := time.Now()
		send(fmt.Sprintf("away%d-", i), 2*queue)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("logging %d exchanges took %v with the collector away", 2*queue, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	dropped := l.Dropped()
	if got := counter(t, reg, "shardns_dnstap_dropped_total"); got != float64(dropped) || got == 0 {
		t.Errorf("shardns_dnstap_dropped_total = %v, Dropped() = %d", got, dropped)
	}

	col.Start()
	// Messages resume: the queue's backlog first (logged while away),
	// then those logged now. Log until one of the latter arrives.
	deadline = time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no message logged after the collector came back reached it")
		}
		send(fmt.Sprintf("after%d-", i), 1)
		if seen(col, "after", 200*time.Millisecond) {
			break
		}
	}
	if l.Written() < 10 {
		t.Errorf("Written() = %d, want at least the 10 before the restart", l.Written())
	}
}

// With no collector at all, logging never blocks and everything past the
// queue is counted as dropped; Close returns at once.
func TestNoCollector(t *testing.T) {
	dir, err := os.MkdirTemp("", "tap")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := dnstaplog.Open(dnstaplog.Config{Target: "unix:" + filepath.Join(dir, "none.sock"), Queue: 4})
	if err != nil {
		t.Fatal(err)
	}
	q, r := pair(t, "x.test.", 1)
	for range 100 {
		l.Client(dnstaplog.UDP, netip.MustParseAddrPort("127.0.0.1:1"), time.Now(), time.Now(), q, r)
	}
	// The queue holds 4 exchanges (8 messages), one may be in the
	// writer's hands: at least 200-10 are dropped.
	if d := l.Dropped(); d < 190 {
		t.Errorf("Dropped() = %d, want at least 190", d)
	}
	start := time.Now()
	l.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	if d := l.Dropped(); d != 200 {
		t.Errorf("after Close, Dropped() = %d, want all 200", d)
	}
}

// seen reads c's frames until one for a name starting with prefix, for
// up to wait.
func seen(c *dnstaptest.Collector, prefix string, wait time.Duration) bool {
	timeout := time.After(wait)
	for {
		select {
		case f := <-c.Frames():
			if strings.HasPrefix(f.Msg.Question[0].Name, prefix) {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// counter is the value of the counter name in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
