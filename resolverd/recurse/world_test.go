package recurse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/nsdconf"
)

// The tests' authoritative servers listen on port 53 of loopback
// addresses 127.a.b.c drawn at random per process (a > 0, so never
// 127.0.0.x), each checked free before use and handed out once, so
// packages tested in parallel do not collide.
var taken = struct {
	sync.Mutex
	m map[netip.Addr]bool
}{m: map[netip.Addr]bool{}}

// loopback returns a 127.x address whose port 53 is free for UDP and TCP.
func loopback(t testing.TB) netip.Addr {
	t.Helper()
	for range 100 {
		a := netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), byte(1 + rand.IntN(254))})
		taken.Lock()
		dup := taken.m[a]
		taken.m[a] = true
		taken.Unlock()
		if dup {
			continue
		}
		ap := netip.AddrPortFrom(a, 53).String()
		l, err := net.Listen("tcp", ap)
		if err != nil {
			if os.IsPermission(err) || strings.Contains(err.Error(), "permission denied") {
				t.Skip("binding port 53 needs root")
			}
			continue
		}
		pc, err := net.ListenPacket("udp", ap)
		l.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return a
	}
	t.Fatal("no free loopback address for port 53")
	return netip.Addr{}
}

// startNSD runs nsd on ip:53 serving zones (origin → zone file text) and
// waits until it answers the first origin's SOA.
func startNSD(t testing.TB, ip netip.Addr, zones map[string]string, first string) {
	t.Helper()
	bin, err := exec.LookPath("nsd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nsd not found (apt-get install nsd)")
		}
		t.Skip("nsd not found")
	}
	dir := t.TempDir()
	var list []nsdconf.Zone
	i := 0
	for origin, text := range zones {
		file := fmt.Sprintf("z%d.zone", i)
		i++
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		list = append(list, nsdconf.Zone{Name: origin, File: file})
	}
	conf := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(conf, []byte(nsdconf.Server{Addr: ip.String(), Port: 53, Dir: dir}.Config(list...)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "-c", conf)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nsd: %v", err)
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
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(first, dns.TypeSOA)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(30 * time.Millisecond) {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "nsd.log"))
			t.Fatalf("nsd on %s exited:\n%s", ip, log)
		default:
		}
		if r, _, err := c.Exchange(q, netip.AddrPortFrom(ip, 53).String()); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "nsd.log"))
	t.Fatalf("nsd on %s did not answer %s SOA:\n%s", ip, first, log)
}

// recorder is a Go authoritative server on ip:53 (UDP and TCP) that
// answers with handle and records every question it receives.
type recorder struct {
	ip netip.Addr
	mu sync.Mutex
	qs []string // "proto name type"
}

func (r *recorder) record(proto string, q dns.Question) {
	r.mu.Lock()
	r.qs = append(r.qs, proto+" "+q.Name+" "+dns.TypeToString[q.Qtype])
	r.mu.Unlock()
}

// questions returns what the server received so far.
func (r *recorder) questions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.qs...)
}

// startRecorder serves handle on ip:53; handle gets the protocol ("udp",
// "tcp") and the query, and returns the reply (nil: none).
func startRecorder(t testing.TB, ip netip.Addr, handle func(proto string, q *dns.Msg) *dns.Msg) *recorder {
	t.Helper()
	rec := &recorder{ip: ip}
	addr := netip.AddrPortFrom(ip, 53).String()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	for _, s := range []*dns.Server{{PacketConn: pc}, {Listener: l}} {
		proto := "udp"
		if s.Listener != nil {
			proto = "tcp"
		}
		s.Handler = dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			rec.record(proto, q.Question[0])
			if m := handle(proto, q); m != nil {
				_ = w.WriteMsg(m)
			}
		})
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = s.ShutdownContext(ctx)
		})
	}
	return rec
}

// soa is the SOA line of a test zone.
func soa(origin string) string {
	return fmt.Sprintf("$ORIGIN %s\n$TTL 300\n@ SOA ns hostmaster 1 7200 900 1209600 60\n", origin)
}

// world is the tests' small Internet: a root, the TLDs test. and
// example., and leaf zones, each level on NSD processes of its own, plus
// Go servers for the odd behaviours.
type world struct {
	root, tld, leaf netip.Addr
	hints           *Hints
	deep, tc, evil  *recorder
	poison, refuser *recorder
	noEDNS, silent  *recorder
	deepIP          netip.Addr
}

// newWorld starts the world.
func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{root: loopback(t), tld: loopback(t), leaf: loopback(t)}
	goIP := func() netip.Addr { return loopback(t) }
	deepIP, tcIP, evilIP, poisonIP, refuserIP, noEDNSIP, silentIP := goIP(), goIP(), goIP(), goIP(), goIP(), goIP(), goIP()
	w.deepIP = deepIP
	R, T, L := w.root.String(), w.tld.String(), w.leaf.String()

	root := soa(".") + `@ NS a.root-servers.example.
example. NS ns.tld.example.
ns.tld.example. A ` + T + `
a.root-servers.example. A ` + R + `
test. NS ns.tld.test.
ns.tld.test. A ` + T + "\n"
	tldTest := soa("test.") + `@ NS ns.tld.test.
ns.tld.test. A ` + T + `
leaf NS ns1.leaf
ns1.leaf A ` + L + `
glueless NS ns.hoster.example.
loop1 NS ns.loop2.test.
loop2 NS ns.loop1.test.
nxns NS ns1.nowhere.example.
nxns NS ns2.nowhere.example.
nxns NS ns3.nowhere.example.
nxns NS ns4.nowhere.example.
nxns NS ns5.nowhere.example.
nxns NS ns6.nowhere.example.
nxns NS ns7.nowhere.example.
nxns NS ns8.nowhere.example.
deep NS ns.deep
ns.deep A ` + deepIP.String() + `
tc NS ns.tc
ns.tc A ` + tcIP.String() + `
evil NS ns.evil
ns.evil A ` + evilIP.String() + `
lame NS ns1.lame
lame NS ns2.lame
ns1.lame A ` + refuserIP.String() + `
ns2.lame A ` + L + `
old NS ns.old
ns.old A ` + noEDNSIP.String() + `
slow NS ns.slow
ns.slow A ` + silentIP.String() + "\n"
	tldExample := soa("example.") + `@ NS ns.tld.example.
ns.tld.example. A ` + T + `
a.root-servers A ` + R + `
hoster NS ns1.hoster
ns1.hoster A ` + L + `
other NS ns1.other
ns1.other A ` + L + `
victim NS ns1.victim
ns1.victim A ` + L + "\n"
	startNSD(t, w.root, map[string]string{".": root}, ".")
	startNSD(t, w.tld, map[string]string{"test.": tldTest, "example.": tldExample}, "test.")
	startNSD(t, w.leaf, map[string]string{
		"leaf.test.":      soa("leaf.test.") + "@ NS ns1\nns1 A " + L + "\nwww A 192.0.2.1\nalias CNAME www.other.example.\ndalias CNAME www.dn.other.example.\nloopa CNAME loopb.other.example.\n",
		"other.example.":  soa("other.example.") + "@ NS ns1\nns1 A " + L + "\nwww A 192.0.2.2\nloopb CNAME loopa.leaf.test.\ndn DNAME glueless.test.\n",
		"glueless.test.":  soa("glueless.test.") + "@ NS ns.hoster.example.\nwww A 192.0.2.3\n",
		"hoster.example.": soa("hoster.example.") + "@ NS ns1\nns1 A " + L + "\nns A " + L + "\n",
		"victim.example.": soa("victim.example.") + "@ NS ns1\nns1 A " + L + "\nns A " + L + "\n",
		"sub.evil.test.":  soa("sub.evil.test.") + "@ NS ns.victim.example.\nwww A 192.0.2.4\n",
		"lame.test.":      soa("lame.test.") + "@ NS ns1\n@ NS ns2\nns1 A " + refuserIP.String() + "\nns2 A " + L + "\nwww A 192.0.2.7\nmail A 192.0.2.8\n",
	}, "leaf.test.")

	aa := func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		return m
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		return r
	}
	// deep.test: a.b.c.deep.test has an address; b.c and c are empty
	// non-terminals; *.w.c.deep.test is a wildcard (so w.c is a name
	// without records).
	w.deep = startRecorder(t, deepIP, func(_ string, q *dns.Msg) *dns.Msg {
		m := aa(q)
		n, qt := strings.ToLower(q.Question[0].Name), q.Question[0].Qtype
		switch {
		case n == "a.b.c.deep.test." && qt == dns.TypeA:
			m.Answer = append(m.Answer, rr("a.b.c.deep.test. 300 A 192.0.2.6"))
		case strings.HasSuffix(n, ".w.c.deep.test.") && qt == dns.TypeA:
			m.Answer = append(m.Answer, rr(n+" 300 A 192.0.2.7"))
		case strings.HasSuffix(n, ".w.c.deep.test.") || n == "w.c.deep.test.":
			m.Ns = append(m.Ns, rr("deep.test. 300 SOA ns.deep.test. h.deep.test. 1 7200 900 1209600 60"))
		case n == "a.b.c.deep.test." || n == "b.c.deep.test." || n == "c.deep.test." || n == "deep.test.":
			m.Ns = append(m.Ns, rr("deep.test. 300 SOA ns.deep.test. h.deep.test. 1 7200 900 1209600 60"))
		default:
			m.Rcode = dns.RcodeNameError
			m.Ns = append(m.Ns, rr("deep.test. 300 SOA ns.deep.test. h.deep.test. 1 7200 900 1209600 60"))
		}
		return m
	})
	// tc.test: over UDP every answer is truncated; TCP answers.
	w.tc = startRecorder(t, tcIP, func(proto string, q *dns.Msg) *dns.Msg {
		m := aa(q)
		if proto == "udp" {
			m.Truncated = true
			return m
		}
		if strings.EqualFold(q.Question[0].Name, "www.tc.test.") && q.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, rr("www.tc.test. 300 A 192.0.2.5"))
		} else {
			m.Ns = append(m.Ns, rr("tc.test. 300 SOA ns.tc.test. h.tc.test. 1 7200 900 1209600 60"))
		}
		return m
	})
	// evil.test refers sub.evil.test to ns.victim.example with glue it
	// has no authority for, pointing at the poison server.
	w.evil = startRecorder(t, evilIP, func(_ string, q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		if dns.IsSubDomain("sub.evil.test.", strings.ToLower(q.Question[0].Name)) {
			m.Ns = append(m.Ns, rr("sub.evil.test. 300 NS ns.victim.example."))
			m.Extra = append(m.Extra, rr("ns.victim.example. 300 A "+poisonIP.String()))
			return m
		}
		m.Authoritative = true
		m.Rcode = dns.RcodeNameError
		m.Ns = append(m.Ns, rr("evil.test. 300 SOA ns.evil.test. h.evil.test. 1 7200 900 1209600 60"))
		return m
	})
	w.poison = startRecorder(t, poisonIP, func(_ string, q *dns.Msg) *dns.Msg {
		m := aa(q)
		m.Answer = append(m.Answer, rr(q.Question[0].Name+" 300 A 203.0.113.66"))
		return m
	})
	w.refuser = startRecorder(t, refuserIP, func(_ string, q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeRefused)
		return m
	})
	// old.test: a server from before EDNS, FORMERR to any OPT record.
	w.noEDNS = startRecorder(t, noEDNSIP, func(_ string, q *dns.Msg) *dns.Msg {
		if q.IsEdns0() != nil {
			m := new(dns.Msg)
			m.SetRcode(q, dns.RcodeFormatError)
			return m
		}
		m := aa(q)
		if strings.EqualFold(q.Question[0].Name, "www.old.test.") && q.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, rr("www.old.test. 300 A 192.0.2.9"))
		} else {
			m.Ns = append(m.Ns, rr("old.test. 300 SOA ns.old.test. h.old.test. 1 7200 900 1209600 60"))
		}
		return m
	})
	w.silent = startRecorder(t, silentIP, func(string, *dns.Msg) *dns.Msg { return nil })
	w.hints = &Hints{Servers: []HintServer{{Name: "a.root-servers.example.", Addrs: []netip.Addr{w.root}}}}
	return w
}

// hintsFile is the world's root hints in zone-file syntax.
func (w *world) hintsFile() string {
	return ". 3600000 NS a.root-servers.example.\na.root-servers.example. 3600000 A " + w.root.String() + "\n"
}
