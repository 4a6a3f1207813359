package e2e

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/nsdtest"
)

// startAllInOne runs dnsd alone, forwarding to an nsd serving the test
// zone, with extra flags. It waits for the TCP listener only: the flags
// may refuse or limit the queries a readiness probe would send.
func startAllInOne(t *testing.T, args ...string) (d *proc, addr, metrics string) {
	t.Helper()
	nsd := nsdtest.Start(t, map[string]string{zoneName: testZone()})
	addr, metrics = port(t), port(t)
	d = start(t, "dnsd", nil, append([]string{"-listen", addr, "-upstream", nsd.Addr, "-metrics", metrics}, args...)...)
	waitTCP(t, d, addr)
	return d, addr, metrics
}

// udpBurst sends n queries from one UDP socket, spaced evenly over span,
// and counts what comes back within a second of the last: full answers and
// empty truncated ones.
func udpBurst(t *testing.T, addr string, n int, span time.Duration) (answered, truncated int) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1232)
		conn.SetReadDeadline(time.Now().Add(span + time.Second))
		for range n {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:k]) != nil {
				continue
			}
			if m.Truncated && len(m.Answer) == 0 {
				truncated++
			} else if m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
				answered++
			}
		}
	}()
	q := new(dns.Msg)
	q.SetQuestion("www.shardns.test.", dns.TypeA)
	gap := span / time.Duration(n)
	for i := range n {
		q.Id = uint16(i + 1)
		wire, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(wire); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		time.Sleep(gap)
	}
	wg.Wait()
	return answered, truncated
}

// TestRateLimitSlipsAndDropsUDPButNotTCP sends one client's 500 UDP queries
// in half a second to dnsd limited to 50 per second: the excess is slipped
// (empty, TC=1) or dropped, and the same client is still answered over TCP.
func TestRateLimitSlipsAndDropsUDPButNotTCP(t *testing.T) {
	d, addr, metrics := startAllInOne(t, "-rate-limit", "50")
	if r := dig(t, addr, "www.shardns.test", "A", "+tcp"); r.Status != "NOERROR" {
		t.Fatalf("dig +tcp before the burst: %s", r.Status)
	}
	const n = 500
	answered, truncated := udpBurst(t, addr, n, 500*time.Millisecond)
	slipped := metric(t, metrics, "shardns_dns_rate_limit_slipped_total")
	dropped := metric(t, metrics, `shardns_dns_dropped_total{reason="rate_limit"}`)
	t.Logf("%d UDP queries: %d answered, %d truncated replies seen; dnsd counted %v slipped, %v dropped", n, answered, truncated, slipped, dropped)
	if slipped == 0 || dropped == 0 {
		t.Errorf("slipped %v, dropped %v: want both above 0", slipped, dropped)
	}
	if truncated == 0 {
		t.Error("no empty TC=1 reply reached the client")
	}
	if answered == 0 || answered > n/2 {
		t.Errorf("%d of %d over-limit queries answered in full: want the first ones only", answered, n)
	}
	if r := dig(t, addr, "www.shardns.test", "A", "+tcp"); r.Status != "NOERROR" || len(r.Answer) != 1 {
		t.Errorf("dig +tcp from the limited client: %s %v", r.Status, r.Answer)
	}
	alive(t, d)
}

// TestACLRefusesOthersWithEDE18 allows only 127.0.0.2: a UDP query from
// 127.0.0.1 is REFUSED with EDE 18, its TCP connection is reset at accept,
// and 127.0.0.2 is answered over both.
func TestACLRefusesOthersWithEDE18(t *testing.T) {
	_, addr, metrics := startAllInOne(t, "-allow", "127.0.0.2/32")
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dig", "@"+host, "-p", port, "+tries=1", "+time=5", "+nocookie", "-b", "127.0.0.1", "+tcp", "www.shardns.test", "A").CombinedOutput()
	// The server resets the connection at accept. Whether dig reads the
	// reset or, when it arrives before dig's query, an end of file is the
	// kernel's timing: either way no answer comes.
	if err == nil || !(strings.Contains(string(out), "connection reset") || strings.Contains(string(out), "end of file")) {
		t.Errorf("dig +tcp from outside -allow: %v, want the connection closed at accept:\n%s", err, out)
	}
	for _, tc := range []struct {
		from, status, ede string
		protos            []string
	}{
		{"127.0.0.1", "REFUSED", "18 (Prohibited)", []string{"+notcp"}},
		{"127.0.0.2", "NOERROR", "", []string{"+notcp", "+tcp"}},
	} {
		for _, proto := range tc.protos {
			r := dig(t, addr, "www.shardns.test", "A", "-b", tc.from, proto)
			if r.Status != tc.status || !strings.HasPrefix(r.EDE, tc.ede) || (tc.ede == "") != (r.EDE == "") {
				t.Errorf("dig -b %s %s: %s EDE %q; want %s EDE %q", tc.from, proto, r.Status, r.EDE, tc.status, tc.ede)
			}
			if tc.status == "NOERROR" && len(r.Answer) != 1 {
				t.Errorf("dig -b %s %s: answer %v", tc.from, proto, r.Answer)
			}
		}
	}
	if n := metric(t, metrics, `shardns_dns_tcp_rejected_total{reason="acl"}`); n < 1 {
		t.Errorf("TCP connections rejected by the ACL: %v, want dig's (one, or two when it retried)", n)
	}
	if n := metric(t, metrics, "shardns_dns_acl_refused_total"); n != 1 {
		t.Errorf("ACL refusals counted: %v, want 1 (the UDP query)", n)
	}
}
