package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/nsdtest"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

const zoneName = "shardns.test."

// testZone has every kind of answer the tests check: plain records, a
// three-link CNAME chain, a TXT RRset over 1232 bytes, a wildcard for
// spreading keys, and SOA MINIMUM 60 for negative answers.
func testZone() string {
	var big strings.Builder
	for i := range 8 {
		fmt.Fprintf(&big, "big 300 IN TXT \"%s\"\n", strings.Repeat(string(rune('a'+i)), 200))
	}
	return `$ORIGIN shardns.test.
$TTL 300
@       3600 IN SOA ns1 hostmaster 2026112201 7200 900 1209600 60
@       IN NS   ns1
ns1     IN A    127.0.0.1
www     IN A    192.0.2.10
www     IN AAAA 2001:db8::10
@       IN MX   10 mail
mail    IN A    192.0.2.25
txt     IN TXT  "v=spf1 -all"
alias1  IN CNAME alias2
alias2  IN CNAME alias3
alias3  IN CNAME www
*.spread IN A   192.0.2.99
` + big.String()
}

// fleet is nsd behind resolverd behind dnsd with four Redis shards.
type fleet struct {
	nsd      *nsdtest.Server
	shards   []*redistest.Server
	resolver *proc
	dnsd     *proc
	dns      string // dnsd's address
	grpc     string // resolverd's address
	metrics  string // dnsd's metrics address
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{}
	f.nsd = nsdtest.Start(t, map[string]string{zoneName: testZone()})
	f.shards = redistest.StartN(t, 4)
	f.grpc = port(t)
	f.resolver = start(t, "resolverd", nil, "-listen", f.grpc, "-upstream", f.nsd.Addr)
	waitTCP(t, f.resolver, f.grpc)
	var addrs []string
	for _, s := range f.shards {
		addrs = append(addrs, s.Addr)
	}
	f.dns = port(t)
	f.metrics = port(t)
	// Flags through the environment, as compose and systemd pass them.
	env := []string{
		"SHARDNS_LISTEN=" + f.dns,
		"SHARDNS_REDIS=" + strings.Join(addrs, ","),
		"SHARDNS_RESOLVER=" + f.grpc,
	}
	f.dnsd = start(t, "dnsd", env, "-metrics", f.metrics, "-l1", "0")
	waitDNS(t, f.dnsd, f.dns, zoneName)
	return f
}

func TestFleetAnswersEveryKind(t *testing.T) {
	f := startFleet(t)
	tests := []struct {
		name, qtype string
		want        []string
	}{
		{"www.shardns.test", "A", []string{"192.0.2.10"}},
		{"www.shardns.test", "AAAA", []string{"2001:db8::10"}},
		{"shardns.test", "MX", []string{"10 mail.shardns.test."}},
		{"txt.shardns.test", "TXT", []string{`"v=spf1 -all"`}},
		{"alias1.shardns.test", "A", []string{"alias2.shardns.test.", "alias3.shardns.test.", "www.shardns.test.", "192.0.2.10"}},
	}
	for _, tt := range tests {
		r := dig(t, f.dns, tt.name, tt.qtype)
		if r.Status != "NOERROR" || !slices.Equal(rdata(r.Answer), tt.want) {
			t.Errorf("dig %s %s: %s %q, want NOERROR %q", tt.name, tt.qtype, r.Status, rdata(r.Answer), tt.want)
		}
		if !r.Flags["qr"] || !r.Flags["rd"] || !r.Flags["ra"] {
			t.Errorf("dig %s %s: flags %v, want qr rd ra", tt.name, tt.qtype, r.Flags)
		}
	}

	// kdig is a second, independent client implementation.
	if _, err := exec.LookPath("kdig"); err == nil {
		host, p, _ := net.SplitHostPort(f.dns)
		out, err := exec.Command("kdig", "@"+host, "-p", p, "+short", "www.shardns.test", "AAAA").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "2001:db8::10" {
			t.Errorf("kdig AAAA: %q %v", out, err)
		}
	} else if os.Getenv("CI") != "" {
		t.Error("kdig not found (apt-get install knot-dnsutils)")
	}
}

func TestFleetNegativeAnswers(t *testing.T) {
	f := startFleet(t)
	for _, tc := range []struct{ name, qtype, status string }{
		{"nope.shardns.test", "A", "NXDOMAIN"},
		{"mail.shardns.test", "AAAA", "NOERROR"}, // NODATA
	} {
		for round := range 2 { // from resolverd, then from the cache
			r := dig(t, f.dns, tc.name, tc.qtype)
			if r.Status != tc.status || len(r.Answer) != 0 || len(r.Authority) != 1 {
				t.Fatalf("round %d: dig %s %s: %s, %d answers, authority %v; want %s with one SOA", round, tc.name, tc.qtype, r.Status, len(r.Answer), r.Authority, tc.status)
			}
			soa, ok := r.Authority[0].(*dns.SOA)
			if !ok || soa.Minttl != 60 || soa.Hdr.Ttl > 60 {
				t.Errorf("round %d: authority %v: want the zone's SOA with TTL at most min(3600, 60)", round, r.Authority[0])
			}
		}
	}
}

func TestFleetBigAnswerTruncatesOverUDPAndComesWholeOverTCP(t *testing.T) {
	f := startFleet(t)
	udp := dig(t, f.dns, "big.shardns.test", "TXT", "+ignore", "+bufsize=1232")
	if !udp.Flags["tc"] {
		t.Errorf("UDP answer of a >1232-byte RRset: flags %v, want tc", udp.Flags)
	}
	tcp := dig(t, f.dns, "big.shardns.test", "TXT", "+tcp")
	if tcp.Status != "NOERROR" || len(tcp.Answer) != 8 || tcp.Flags["tc"] {
		t.Errorf("TCP: %s, %d records, flags %v; want all 8 records", tcp.Status, len(tcp.Answer), tcp.Flags)
	}
	// dig's default falls back to TCP by itself on TC and gets it all.
	if auto := dig(t, f.dns, "big.shardns.test", "TXT"); len(auto.Answer) != 8 {
		t.Errorf("dig with TCP fallback: %d records", len(auto.Answer))
	}
}

func TestFleetSecondAnswerFromCacheWithAgedTTL(t *testing.T) {
	f := startFleet(t)
	first := dig(t, f.dns, "WWW.Shardns.TEST", "A")
	time.Sleep(2100 * time.Millisecond)
	second := dig(t, f.dns, "www.shardns.test", "A")
	if !slices.Equal(rdata(first.Answer), rdata(second.Answer)) || len(first.Answer) != 1 {
		t.Fatalf("answers differ: %v then %v", first.Answer, second.Answer)
	}
	t1, t2 := first.Answer[0].Header().Ttl, second.Answer[0].Header().Ttl
	if t1 > 300 || t2 >= t1 || t2 < t1-5 {
		t.Errorf("TTL %d then %d: want the cached answer aged by about 2s", t1, t2)
	}
	if first.Answer[0].Header().Name != "WWW.Shardns.TEST." || second.Answer[0].Header().Name != "www.shardns.test." {
		t.Errorf("owner names %q, %q: want each query's spelling", first.Answer[0].Header().Name, second.Answer[0].Header().Name)
	}
	// The entry is in Redis under the documented key, with expiry TTL + stale.
	key := "dns:{www.shardns.test.}:A:IN"
	found := 0
	for _, s := range f.shards {
		ttl, err := s.Client().PTTL(context.Background(), key).Result()
		if err == nil && ttl > 0 {
			found++
			if ttl < 24*time.Hour || ttl > 24*time.Hour+300*time.Second {
				t.Errorf("Redis expiry %v, want TTL + 24h stale window", ttl)
			}
		}
	}
	if found != 1 {
		t.Errorf("key %s on %d shards, want exactly 1", key, found)
	}
	if n := metric(t, f.metrics, `shardns_lookup_answers_total{source="redis"}`); n < 1 {
		t.Errorf("redis hits counted: %v", n)
	}
}

func TestFleetSpreadsKeysAndSurvivesAShardKilled(t *testing.T) {
	f := startFleet(t)
	const names = 200
	for i := range names / 2 {
		if r, err := exchange(f.dns, "udp", fmt.Sprintf("n%d.spread.shardns.test", i), dns.TypeA); err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("query %d: %v %v", i, r, err)
		}
	}
	for i, s := range f.shards {
		n, err := s.Client().DBSize(context.Background()).Result()
		if err != nil || n == 0 {
			t.Errorf("shard %d holds %d keys (%v): want keys on every shard", i, n, err)
		}
	}
	// Kill one shard mid-run: every query still gets its answer.
	f.shards[1].Kill()
	failed := 0
	for i := range names {
		name := fmt.Sprintf("n%d.spread.shardns.test", i)
		r, err := exchange(f.dns, "udp", name, dns.TypeA)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			failed++
			t.Errorf("after shard kill, %s: %v %v", name, r, err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d queries failed with a shard down", failed, names)
	}
	if r := dig(t, f.dns, "www.shardns.test", "A"); r.Status != "NOERROR" {
		t.Errorf("dig after shard kill: %s", r.Status)
	}
}

func TestFleetTCPConnectionCarriesThousandsOfQueries(t *testing.T) {
	f := startFleet(t)
	conn, err := dns.DialTimeout("tcp", f.dns, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 3000 {
		q := new(dns.Msg)
		q.SetQuestion(fmt.Sprintf("n%d.spread.shardns.test.", i%50), dns.TypeA)
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		if err := conn.WriteMsg(q); err != nil {
			t.Fatalf("query %d: write: %v", i, err)
		}
		r, err := conn.ReadMsg()
		if err != nil || r.Id != q.Id || len(r.Answer) != 1 {
			t.Fatalf("query %d on one connection: %v %v", i, r, err)
		}
	}
}

func TestAllInOne(t *testing.T) {
	nsd := nsdtest.Start(t, map[string]string{zoneName: testZone()})
	addr := port(t)
	d := start(t, "dnsd", nil, "-listen", addr, "-upstream", nsd.Addr, "-http", "127.0.0.1:0")
	waitDNS(t, d, addr, zoneName)
	first := dig(t, addr, "www.shardns.test", "A")
	second := dig(t, addr, "www.shardns.test", "A")
	if first.Status != "NOERROR" || !slices.Equal(rdata(first.Answer), []string{"192.0.2.10"}) || !slices.Equal(rdata(second.Answer), rdata(first.Answer)) {
		t.Errorf("all-in-one: %v then %v", first.Answer, second.Answer)
	}
	if r := dig(t, addr, "big.shardns.test", "TXT", "+tcp"); len(r.Answer) != 8 {
		t.Errorf("all-in-one TCP: %d records", len(r.Answer))
	}
	if r := dig(t, addr, "nope.shardns.test", "A"); r.Status != "NXDOMAIN" {
		t.Errorf("all-in-one NXDOMAIN: %s", r.Status)
	}
}

// TestAllInOneNeverUsesItselfAsUpstream runs dnsd on port 53 of a loopback
// address that resolv.conf names: the default upstreams must skip it.
func TestAllInOneNeverUsesItselfAsUpstream(t *testing.T) {
	const self = "127.83.0.1"
	pc, err := net.ListenPacket("udp", self+":53")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot bind %s:53 (needs root or CAP_NET_BIND_SERVICE): %v", self, err)
		}
		t.Skipf("cannot bind %s:53 (needs root or CAP_NET_BIND_SERVICE): %v", self, err)
	}
	pc.Close()
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver "+self+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := start(t, "dnsd", nil, "-listen", self+":53", "-resolv-conf", conf)
	select {
	case <-d.Done():
		if !strings.Contains(d.Out.String(), "no upstream") {
			t.Errorf("dnsd exited without saying why: %v\n%s", d.Err(), d.Out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dnsd started with only itself as upstream")
	}

	if err := os.WriteFile(conf, []byte("nameserver "+self+"\nnameserver 127.83.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d = start(t, "dnsd", nil, "-listen", self+":53", "-resolv-conf", conf)
	waitTCP(t, d, self+":53")
	log := d.Out.String()
	if !strings.Contains(log, "127.83.0.2:53") || strings.Contains(log, "upstreams=["+self) {
		t.Errorf("upstreams: want only 127.83.0.2:53\n%s", log)
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	for bin, flags := range map[string][]string{
		"dnsd":      {"-listen", "-redis", "-redis-cluster", "-resolver", "-upstream", "-http", "-l1", "-min-ttl", "-max-ttl", "-stale", "-metrics", "-log-format", "SHARDNS_LISTEN"},
		"resolverd": {"-listen", "-upstream", "-zones", "-metrics", "-log-format", "SHARDNS_UPSTREAM"},
		"cacheapi":  {"-listen", "-redis", "-redis-cluster", "-resolver", "-log-format", "SHARDNS_RESOLVER"},
	} {
		out, err := exec.Command(filepath.Join(binDir, bin), "-h").CombinedOutput()
		if err != nil {
			t.Errorf("%s -h: %v", bin, err)
		}
		for _, f := range flags {
			if !slices.ContainsFunc(strings.Fields(string(out)), func(w string) bool { return w == f || w == "[$"+f+"]" }) {
				t.Errorf("%s -h does not list %s:\n%s", bin, f, out)
			}
		}
	}
}
