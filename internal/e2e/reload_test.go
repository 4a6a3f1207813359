package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/redistest"
	"github.com/shardns/shardns/internal/testutil/testcerts"
)

// reloadZone writes the zone file of reload.test with www's address,
// every TTL 1 s.
func reloadZone(t *testing.T, path string, serial int, addr string) {
	t.Helper()
	writeReloadZone(t, path, serial, addr, 1)
}

// writeReloadZone writes the zone file of reload.test with www's address
// and ttl as every TTL (and the negative TTL).
func writeReloadZone(t *testing.T, path string, serial int, addr string, ttl int) {
	t.Helper()
	zone := fmt.Sprintf(`$ORIGIN reload.test.
$TTL %[3]d
@   IN SOA ns.reload.test. admin.reload.test. %[1]d 3600 600 86400 %[3]d
@   IN NS  ns.reload.test.
ns  IN A   192.0.2.53
www IN A   %[2]s
`, serial, addr, ttl)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as an editor or a deploy would
		t.Fatal(err)
	}
}

// answerA is www.reload.test's address as addr answers it over network.
func answerA(addr, network string) (string, error) {
	r, err := exchange(addr, network, "www.reload.test.", dns.TypeA)
	if err != nil {
		return "", err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		return "", fmt.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok {
		return "", fmt.Errorf("answer %v", r.Answer[0])
	}
	return a.A.String(), nil
}

// TestReloadUnderLoad: a zone file edited and SIGHUP sent while dnsperf
// runs against dnsd: no query is lost or failed, a TCP connection opened
// before the reload keeps being answered, the new answer is served, and a
// broken file afterwards changes nothing and says why.
func TestReloadUnderLoad(t *testing.T) {
	bin := needTool(t, "dnsperf", "dnsperf")
	dir := t.TempDir()
	zones := filepath.Join(dir, "zones")
	if err := os.Mkdir(zones, 0o755); err != nil {
		t.Fatal(err)
	}
	zoneFile := filepath.Join(zones, "reload.test.zone")
	reloadZone(t, zoneFile, 1, "192.0.2.1")
	addr := port(t)
	conf := filepath.Join(dir, "shardns.yaml")
	// The upstream is a loopback port nobody serves: every name asked is in
	// the local zone.
	body := fmt.Sprintf("zones: %s\nupstream: [127.0.0.1:9]\ndnsd:\n  listen: %s\n  http: \"\"\n  rate-limit: 0\n", zones, addr)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d := start(t, "dnsd", nil, "-config", conf)
	waitDNS(t, d, addr, "reload.test.")
	if got, err := answerA(addr, "udp"); err != nil || got != "192.0.2.1" {
		t.Fatalf("before the reload: %q %v", got, err)
	}

	tcp, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	conn := &dns.Conn{Conn: tcp}
	askTCP := func() (string, error) {
		q := new(dns.Msg)
		q.SetQuestion("www.reload.test.", dns.TypeA)
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		if err := conn.WriteMsg(q); err != nil {
			return "", err
		}
		r, err := conn.ReadMsg()
		if err != nil {
			return "", err
		}
		if len(r.Answer) != 1 {
			return "", fmt.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		return r.Answer[0].(*dns.A).A.String(), nil
	}
	if _, err := askTCP(); err != nil {
		t.Fatalf("TCP before the reload: %v", err)
	}

	queries := filepath.Join(dir, "queries")
	if err := os.WriteFile(queries, []byte(strings.Repeat("www.reload.test A\nreload.test SOA\n", 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	statsc := make(chan [3]int64, 1)
	go func() {
		defer wg.Done()
		st := dnsperf(t, bin, addr, queries, "-l", "6", "-Q", "3000", "-c", "4")
		statsc <- [3]int64{st.Sent, st.Completed, st.Lost + st.Sent - st.Rcodes["NOERROR"]}
	}()
	time.Sleep(2 * time.Second)
	reloadZone(t, zoneFile, 2, "192.0.2.2")
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	st := <-statsc
	if st[0] == 0 || st[1] != st[0] || st[2] != 0 {
		t.Errorf("dnsperf across the reload: %d sent, %d completed, %d lost or not NOERROR; want none lost", st[0], st[1], st[2])
	}

	deadline := time.Now().Add(5 * time.Second) // the old answer's TTL is 1 s
	for {
		got, err := answerA(addr, "udp")
		if err == nil && got == "192.0.2.2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the reload dnsd answers %q %v, want 192.0.2.2\n%s", got, err, d.Out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, err := askTCP(); err != nil || got != "192.0.2.2" {
		t.Errorf("TCP connection opened before the reload: %q %v", got, err)
	}

	// A broken zone file: the reload fails, says which file, and the
	// answer stays.
	if err := os.WriteFile(zoneFile, []byte("www IN A not-an-address\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !strings.Contains(d.Out.String(), "reload.test.zone") {
		if ctx.Err() != nil {
			t.Fatalf("a failed reload did not name the broken file:\n%s", d.Out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // past the cached answer's TTL
	if got, err := answerA(addr, "udp"); err != nil || got != "192.0.2.2" {
		t.Errorf("after a failed reload: %q %v, want 192.0.2.2 still", got, err)
	}
}

// serialOf is the serial number of p's certificate.
func serialOf(t *testing.T, p testcerts.Pair) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.String()
}

// dotSerial is the serial number of the certificate dnsd presents on its
// DoT address, verified against ca.
func dotSerial(t *testing.T, addr string, ca *testcerts.CA) string {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"dot"}})
	if err != nil {
		t.Fatalf("DoT handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestReloadACLRateLimitAndCertificate: SIGHUP applies a new -allow, a
// new -rate-limit and a new certificate for the encrypted listeners; a
// changed -listen is logged as needing a restart.
func TestReloadACLRateLimitAndCertificate(t *testing.T) {
	dir := t.TempDir()
	zones := filepath.Join(dir, "zones")
	if err := os.Mkdir(zones, 0o755); err != nil {
		t.Fatal(err)
	}
	reloadZone(t, filepath.Join(zones, "reload.test.zone"), 1, "192.0.2.1")
	ca := testcerts.NewCA(t, "reload CA")
	first, second := ca.Server(t, "first", "127.0.0.1"), ca.Server(t, "second", "127.0.0.1")
	certFile, keyFile := filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls.key")
	install := func(p testcerts.Pair) {
		for _, f := range [][2]string{{p.Cert, certFile}, {p.Key, keyFile}} {
			b, err := os.ReadFile(f[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f[1], b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(first)
	addr, dot := port(t), port(t)
	conf := filepath.Join(dir, "shardns.yaml")
	write := func(allow, listen string, rate int) {
		body := fmt.Sprintf("zones: %s\nupstream: [127.0.0.1:9]\nallow: %s\ndnsd:\n  listen: %s\n  http: \"\"\n  cookies: false\n  rate-limit: %d\n  dot: %s\n  tls-cert: %s\n  tls-key: %s\n",
			zones, allow, listen, rate, dot, certFile, keyFile)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("127.0.0.0/8", addr, 0)
	d := start(t, "dnsd", nil, "-config", conf)
	waitDNS(t, d, addr, "reload.test.")
	if got := dotSerial(t, dot, ca); got != serialOf(t, first) {
		t.Fatalf("DoT presents serial %s, want the first certificate's", got)
	}
	// burst asks 10 times at once and counts the full answers: a query
	// over the rate limit is dropped or slipped (TC=1, no answer).
	burst := func() (answered int) {
		c := &dns.Client{Timeout: 300 * time.Millisecond}
		q := new(dns.Msg)
		q.SetQuestion("www.reload.test.", dns.TypeA)
		for range 10 {
			if r, _, err := c.Exchange(q, addr); err == nil && len(r.Answer) == 1 {
				answered++
			}
		}
		return answered
	}
	if n := burst(); n != 10 {
		t.Fatalf("without a rate limit %d of 10 answered", n)
	}

	write("10.0.0.0/8", strings.Replace(addr, "127.0.0.1", "127.0.0.2", 1), 1)
	install(second)
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.Out.String(), "configuration reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", d.Out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(d.Out.String(), "needs a restart") || !strings.Contains(d.Out.String(), "flag=listen") {
		t.Errorf("a changed -listen is not logged as needing a restart:\n%s", d.Out.String())
	}
	r, err := exchange(addr, "udp", "www.reload.test.", dns.TypeA)
	if err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("after -allow 10.0.0.0/8: %v %v, want REFUSED from the address still listened on", r, err)
	}
	write("127.0.0.0/8", addr, 1)
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for strings.Count(d.Out.String(), "configuration reloaded") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no second reload logged:\n%s", d.Out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := dotSerial(t, dot, ca); got != serialOf(t, second) {
		t.Errorf("after the reload DoT presents serial %s, want the second certificate's", got)
	}
	if n := burst(); n == 0 || n > 5 {
		t.Errorf("with -rate-limit 1, %d of 10 quick queries answered in full; want a few", n)
	}
}

// TestFleetReloadFlushesLocalZones: resolverd with the fleet's cache
// shards flushes a local zone from them, and from the frontends' L1
// through the invalidation channel, when a reload changes it: a dnsd in
// front answers the edited record at once, not the cached one for the
// rest of its hour-long TTL.
func TestFleetReloadFlushesLocalZones(t *testing.T) {
	shard := redistest.Start(t)
	zones := t.TempDir()
	zoneFile := filepath.Join(zones, "reload.test.zone")
	writeReloadZone(t, zoneFile, 1, "192.0.2.1", 3600)
	grpcAddr := port(t)
	r := start(t, "resolverd", nil, "-listen", grpcAddr, "-zones", zones, "-redis", shard.Addr, "-upstream", "127.0.0.1:9")
	waitTCP(t, r, grpcAddr)
	addr := port(t)
	d := start(t, "dnsd", nil, "-listen", addr, "-resolver", grpcAddr, "-redis", shard.Addr, "-l1", "1000", "-http", "")
	waitDNS(t, d, addr, "reload.test.")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc := shard.Client()
	defer rc.Close()
	// The answer is in L1 and, once its write lands, in the shard.
	if got, err := answerA(addr, "udp"); got != "192.0.2.1" {
		t.Fatalf("before the reload: %q %v", got, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		keys, err := rc.Keys(ctx, "*www.reload.test*").Result()
		if err == nil && len(keys) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the answer never reached the shard: %v %v", keys, err)
		}
	}
	writeReloadZone(t, zoneFile, 2, "192.0.2.2", 3600)
	if err := r.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err := answerA(addr, "udp")
		if got == "192.0.2.2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after resolverd's reload dnsd still answers %q %v, want 192.0.2.2\nresolverd:\n%s\ndnsd:\n%s", got, err, r.Out.String(), d.Out.String())
		}
	}
}
