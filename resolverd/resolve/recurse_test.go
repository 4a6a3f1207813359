package resolve_test

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/resolve"
)

// rootServer is an authoritative server for the whole tree on port 53 of
// a loopback address drawn at random: www.rec.test and www.fwd.test have
// addresses (the latter unlike the forwarding group's upstream), every
// name above them is an empty non-terminal. It counts its queries.
type rootServer struct {
	ip      netip.Addr
	queries atomic.Int64
}

func (s *rootServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	name, qt := strings.ToLower(r.Question[0].Name), r.Question[0].Qtype
	add := func(sec *[]dns.RR, s string) {
		rr, _ := dns.NewRR(s)
		*sec = append(*sec, rr)
	}
	switch {
	case name == "." && qt == dns.TypeNS:
		add(&m.Answer, ". 300 NS a.root.test.")
		add(&m.Extra, "a.root.test. 300 A "+s.ip.String())
	case (name == "www.rec.test." || name == "www.fwd.test.") && qt == dns.TypeA:
		add(&m.Answer, name+" 300 A 198.51.100.1")
	case dns.IsSubDomain(name, "www.rec.test.") || dns.IsSubDomain(name, "www.fwd.test.") || dns.IsSubDomain(name, "a.root.test."):
		add(&m.Ns, ". 300 SOA a.root.test. h.root.test. 1 2 3 4 60")
	default:
		m.Rcode = dns.RcodeNameError
		add(&m.Ns, ". 300 SOA a.root.test. h.root.test. 1 2 3 4 60")
	}
	_ = w.WriteMsg(m)
}

// startRoot serves a rootServer on port 53 of a free 127.x address.
func startRoot(t *testing.T) *rootServer {
	t.Helper()
	for range 100 {
		ip := netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), byte(1 + rand.IntN(254))})
		addr := netip.AddrPortFrom(ip, 53).String()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			if strings.Contains(err.Error(), "permission denied") {
				t.Skip("binding port 53 needs root")
			}
			continue
		}
		s := &rootServer{ip: ip}
		srv := &dns.Server{PacketConn: pc, Handler: s}
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
		return s
	}
	t.Fatal("no free loopback address for port 53")
	return nil
}

// TestRecurseBesideZonesAndForwarding: with Recurse, a local zone still
// answers locally and a forwarding group's names are still forwarded;
// the rest is resolved from the root hints. Without it, those are
// REFUSED. Reloads keep the iterator's cache, and a bad hints file
// changes nothing.
func TestRecurseBesideZonesAndForwarding(t *testing.T) {
	root := startRoot(t)
	hints := filepath.Join(t.TempDir(), "root.hints")
	if err := os.WriteFile(hints, []byte(". NS a.root.test.\na.root.test. A "+root.ip.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	zoneDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(zoneDir, "example.test.zone"), []byte(testZone), 0o644); err != nil {
		t.Fatal(err)
	}
	fwd := startFixed(t, "192.0.2.99")
	cfg := resolve.Config{
		Zones: zoneDir, Forward: []forward.Route{{Zone: "fwd.test.", Upstreams: []string{fwd.addr}}},
		HealthInterval: -1, Recurse: true, RootHints: hints,
	}
	r, err := resolve.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ask := func(name string) (string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m, source, err := r.Exchange(ctx, question(name, dns.TypeA))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Rcode != dns.RcodeSuccess {
			return dns.RcodeToString[m.Rcode], source
		}
		return strings.Join(rdata(m.Answer), ","), source
	}
	for _, tc := range []struct{ name, want, source string }{
		{"www.example.test.", "192.0.2.1", "zone:example.test."},
		{"www.fwd.test.", "192.0.2.99", "udp://" + fwd.addr},
		{"www.rec.test.", "198.51.100.1", "recurse"},
	} {
		if got, source := ask(tc.name); got != tc.want || source != tc.source {
			t.Errorf("%s: %s from %s, want %s from %s", tc.name, got, source, tc.want, tc.source)
		}
	}

	// A reload with a hints file that does not parse changes nothing.
	bad := filepath.Join(t.TempDir(), "bad.hints")
	if err := os.WriteFile(bad, []byte("this is not a hints file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badCfg := cfg
	badCfg.RootHints = bad
	if err := r.Reload(badCfg); err == nil || !strings.Contains(err.Error(), "bad.hints") {
		t.Fatalf("reload with bad hints: %v", err)
	}
	// The same configuration again: the iterator and its cache survive,
	// so the answer comes without a query.
	before := root.queries.Load()
	if err := r.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got, _ := ask("www.rec.test."); got != "198.51.100.1" {
		t.Fatalf("after reload: %s", got)
	}
	if n := root.queries.Load() - before; n != 0 {
		t.Errorf("after reload the root got %d queries, want 0 (the answer cached)", n)
	}
	// Recursion off: the names no zone or group covers are refused.
	off := cfg
	off.Recurse, off.RootHints = false, ""
	if err := r.Reload(off); err != nil {
		t.Fatal(err)
	}
	if got, source := ask("www.rec.test."); got != "REFUSED" || source != "none" {
		t.Errorf("without recursion: %s from %s, want REFUSED", got, source)
	}
	// Hints without recursion are a mistake.
	off.RootHints = hints
	if err := r.Reload(off); err == nil {
		t.Error("root hints without recursion were taken")
	}
}

// TestRecurseAlone: recursion is enough to open a resolver.
func TestRecurseAlone(t *testing.T) {
	root := startRoot(t)
	hints := filepath.Join(t.TempDir(), "root.hints")
	if err := os.WriteFile(hints, []byte(". NS a.root.test.\na.root.test. A "+root.ip.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := resolve.Open(resolve.Config{Recurse: true, RootHints: hints})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q := question("www.rec.test.", dns.TypeA)
	q.SetEdns0(1232, false)
	wire, _ := q.Pack()
	ans, source, rcode, err := r.ResolveWire(ctx, wire)
	if err != nil || source != "recurse" || rcode != dns.RcodeSuccess {
		t.Fatalf("%v %s %d", err, source, rcode)
	}
	m := new(dns.Msg)
	if err := m.Unpack(ans); err != nil || len(m.Answer) != 1 || m.Extra[len(m.Extra)-1].Header().Rrtype != dns.TypeOPT {
		t.Fatalf("%v %v", err, m)
	}
}
