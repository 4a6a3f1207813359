package resolve_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/zones"
)

// testZone is served locally; its CNAMEs lead out of the zone.
const testZone = `$TTL 300
@     IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 60
      IN NS  ns1.example.test.
ns1   IN A     127.0.0.53
www   IN A     192.0.2.1
out   IN CNAME www.example.net.
gone  IN CNAME nx.example.net.
bounce IN CNAME back.example.net.
loop  IN CNAME loop.example.net.
`

// loadZones writes testZone into a temporary folder and loads it.
func loadZones(t testing.TB) *zones.Authority {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "example.test.zone"), []byte(testZone), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := zones.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// upstream is an in-process authoritative server for example.net:
// www has an A record, back is a CNAME into example.test, loop is a CNAME
// to itself, everything else NXDOMAIN. It counts the queries it receives.
type upstream struct {
	addr    string
	queries atomic.Int64
}

func (u *upstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	u.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	add := func(s string) {
		rr, _ := dns.NewRR(s)
		m.Answer = append(m.Answer, rr)
	}
	switch strings.ToLower(r.Question[0].Name) { // names are case-insensitive (RFC 4343); queries come in 0x20 case
	case "www.example.net.":
		if r.Question[0].Qtype == dns.TypeA {
			add("www.example.net. 120 IN A 192.0.2.7")
		}
	case "back.example.net.":
		add("back.example.net. 120 IN CNAME www.example.test.")
	case "loop.example.net.":
		add("loop.example.net. 120 IN CNAME loop.example.test.")
	default:
		m.Rcode = dns.RcodeNameError
		soa, _ := dns.NewRR("example.net. 60 IN SOA ns.example.net. h.example.net. 1 2 3 4 30")
		m.Ns = append(m.Ns, soa)
	}
	_ = w.WriteMsg(m)
}

// startUpstream serves a new upstream over UDP on a free loopback port.
func startUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{}
	u.addr = dnstest.StartUDP(t, u)
	return u
}

// newForwarder forwards to addrs, without background health probes.
func newForwarder(t testing.TB, addrs ...string) *forward.Forwarder {
	t.Helper()
	f, err := forward.New(forward.Config{Upstreams: addrs, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// question returns a query for name and qtype with ID 0x2a and EDNS.
func question(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0x2a
	return m
}

// rdata lists the data of each record: addresses and CNAME targets.
func rdata(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.CNAME:
			out = append(out, v.Target)
		default:
			out = append(out, rr.String())
		}
	}
	return out
}
