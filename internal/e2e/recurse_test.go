package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// loopback53 returns a 127.x address, drawn at random, whose port 53 is
// free for UDP and TCP (addresses of 127.0.0.0/8 need no setup on Linux).
func loopback53(t *testing.T) netip.Addr {
	t.Helper()
	for range 100 {
		a := netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), byte(1 + rand.IntN(254))})
		ap := netip.AddrPortFrom(a, 53).String()
		l, err := net.Listen("tcp", ap)
		if err != nil {
			if strings.Contains(err.Error(), "permission denied") {
				t.Skip("binding port 53 needs root")
			}
			continue
		}
		pc, err := net.ListenPacket("udp", ap)
		l.Close()
		if err == nil {
			pc.Close()
			return a
		}
	}
	t.Fatal("no free loopback address for port 53")
	return netip.Addr{}
}

// nsd53 runs nsd on ip:53 serving one zone and waits for its SOA.
func nsd53(t *testing.T, ip netip.Addr, origin, text string) {
	t.Helper()
	bin, err := exec.LookPath("nsd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nsd not found (apt-get install nsd)")
		}
		t.Skip("nsd not found")
	}
	dir := t.TempDir()
	conf := fmt.Sprintf("server:\n  ip-address: %s\n  port: 53\n  do-ip6: no\n  username: \"\"\n  chroot: \"\"\n  zonesdir: %q\n  pidfile: %q\n  database: \"\"\n  zonelistfile: %q\n  xfrdfile: %q\n  xfrdir: %q\n  logfile: %q\n  server-count: 1\n  verbosity: 1\n  reuseport: no\n  rrl-ratelimit: 0\nremote-control:\n  control-enable: no\nzone:\n  name: %q\n  zonefile: \"z.zone\"\n",
		ip, dir, filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "zone.list"), filepath.Join(dir, "xfrd.state"), dir, filepath.Join(dir, "nsd.log"), origin)
	if err := os.WriteFile(filepath.Join(dir, "z.zone"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nsd.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "-c", filepath.Join(dir, "nsd.conf"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr := netip.AddrPortFrom(ip, 53).String()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r, err := exchange(addr, "udp", origin, dns.TypeSOA); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "nsd.log"))
	t.Fatalf("nsd on %s did not answer %s SOA\n%s", ip, origin, log)
}

// TestRecurseFromRootHints runs the all-in-one dnsd with -recurse and
// -root-hints naming a root of NSD on loopback, which delegates test. to
// a second NSD, which delegates leaf.test. to a third. dig gets answers
// through the referrals, a CNAME chain, NXDOMAIN with the SOA, and for a
// CNAME loop SERVFAIL, counted in shardns_recurse_limit_total.
func TestRecurseFromRootHints(t *testing.T) {
	root, tld, leaf := loopback53(t), loopback53(t), loopback53(t)
	soa := func(o string) string {
		return "$ORIGIN " + o + "\n$TTL 300\n@ SOA ns hostmaster 1 7200 900 1209600 60\n"
	}
	nsd53(t, root, ".", soa(".")+"@ NS a.root-servers.test.\ntest. NS ns.tld.test.\nns.tld.test. A "+tld.String()+"\na.root-servers.test. A "+root.String()+"\n")
	nsd53(t, tld, "test.", soa("test.")+"@ NS ns.tld\nns.tld A "+tld.String()+"\na.root-servers A "+root.String()+"\nleaf NS ns1.leaf\nns1.leaf A "+leaf.String()+"\n")
	nsd53(t, leaf, "leaf.test.", soa("leaf.test.")+"@ NS ns1\nns1 A "+leaf.String()+"\nwww A 192.0.2.41\nalias CNAME www\nloop1 CNAME loop2\nloop2 CNAME loop1\n")
	hints := filepath.Join(t.TempDir(), "named.root")
	if err := os.WriteFile(hints, []byte(". 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A "+root.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dnsAddr, metrics := port(t), port(t)
	d := start(t, "dnsd", nil, "-listen", dnsAddr, "-metrics", metrics, "-http", "", "-recurse", "-root-hints", hints, "-dnssec", "off")
	waitDNS(t, d, dnsAddr, "leaf.test.")

	for i := range 2 { // a miss, then a hit
		got := dig(t, dnsAddr, "www.leaf.test", "A")
		if got.Status != "NOERROR" || !slices.Equal(rdata(got.Answer), []string{"192.0.2.41"}) || !got.Flags["ra"] || got.Flags["aa"] {
			t.Fatalf("www.leaf.test (dig %d): %s %v flags %v\n%s", i+1, got.Status, got.Answer, got.Flags, got.Raw)
		}
	}
	got := dig(t, dnsAddr, "alias.leaf.test", "A")
	if got.Status != "NOERROR" || !slices.Equal(rdata(got.Answer), []string{"www.leaf.test.", "192.0.2.41"}) {
		t.Errorf("alias.leaf.test: %s %v", got.Status, got.Answer)
	}
	got = dig(t, dnsAddr, "nope.leaf.test", "A")
	if got.Status != "NXDOMAIN" || len(got.Authority) != 1 || got.Authority[0].Header().Rrtype != dns.TypeSOA || got.Authority[0].Header().Name != "leaf.test." {
		t.Errorf("nope.leaf.test: %s authority %v", got.Status, got.Authority)
	}
	got = dig(t, dnsAddr, "loop1.leaf.test", "A")
	if got.Status != "SERVFAIL" {
		t.Errorf("loop1.leaf.test: %s, want SERVFAIL", got.Status)
	}
	if n := metric(t, metrics, `shardns_recurse_limit_total{limit="cname_chain"}`); n != 1 {
		t.Errorf("cname_chain limit counted %v, want 1", n)
	}
}
