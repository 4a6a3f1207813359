package server_test

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The zone the in-process authoritative server answers for.
const (
	zone     = "example.com."
	bigName  = "big.example.com." // TXT RRset larger than MaxUDPSize
	bigTXTs  = 12                 // records in the big RRset
	ttlA     = 300                // TTL of every A record
	slowWait = 100 * time.Millisecond
)

// authServer is an authoritative server for example.com. on 127.0.0.1,
// UDP and TCP on one port, built on miekg/dns. It counts every query it
// receives, by name and type. It answers:
//
//   - A for any name: 192.0.2.1, TTL ttlA;
//   - TXT for bigName: bigTXTs records of 200 bytes each, truncated over
//     UDP to the querier's size like any authoritative server;
//   - names whose first label starts with "nx": NXDOMAIN with the SOA;
//   - names whose first label starts with "slow": answered after slowWait;
//   - names whose first label starts with "hole": never answered;
//   - other types: NODATA with the SOA; names outside the zone: REFUSED.
//
// Like NSD, it never sets CD in a reply, and it compresses names.
type authServer struct {
	addr string

	mu     sync.Mutex
	counts map[string]int // "name/TYPE", name lowercased
	total  int

	stopOnce sync.Once
	servers  []*dns.Server
	done     []chan error
}

// startAuth starts an authServer and stops it when the test ends.
func startAuth(t testing.TB) *authServer {
	t.Helper()
	a := &authServer{counts: map[string]int{}}
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		p, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("auth: listen udp: %v", err)
		}
		l, err := net.Listen("tcp", p.LocalAddr().String())
		if err != nil {
			p.Close()
			continue
		}
		pc, ln = p, l
		break
	}
	if pc == nil {
		t.Fatal("auth: no port free for both UDP and TCP")
	}
	a.addr = pc.LocalAddr().String()
	a.serve(t, &dns.Server{PacketConn: pc, Handler: a})
	a.serve(t, &dns.Server{Listener: ln, Handler: a})
	t.Cleanup(a.Stop)
	return a
}

func (a *authServer) serve(t testing.TB, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	errc := make(chan error, 1)
	go func() { errc <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("auth: server did not start: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("auth: server did not start in 5s")
	}
	a.servers = append(a.servers, srv)
	a.done = append(a.done, errc)
}

// Stop shuts the server down; later queries to its port are refused.
func (a *authServer) Stop() {
	a.stopOnce.Do(func() {
		for i, srv := range a.servers {
			_ = srv.Shutdown()
			<-a.done[i]
		}
	})
}

// Count is how many queries for name and qtype arrived, over UDP and TCP.
func (a *authServer) Count(name string, qtype uint16) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.counts[strings.ToLower(name)+"/"+dns.TypeToString[qtype]]
}

// Total is how many queries arrived.
func (a *authServer) Total() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total
}

// ServeDNS answers one query as the type comment says.
func (a *authServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	a.mu.Lock()
	a.counts[name+"/"+dns.TypeToString[q.Qtype]]++
	a.total++
	a.mu.Unlock()

	first := name
	if i := strings.IndexByte(name, '.'); i >= 0 {
		first = name[:i]
	}
	switch {
	case strings.HasPrefix(first, "hole"):
		return
	case strings.HasPrefix(first, "slow"):
		time.Sleep(slowWait)
	}
	m := answer(r, name, first)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

func answer(r *dns.Msg, name, first string) *dns.Msg {
	q := r.Question[0]
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.CheckingDisabled = false // as NSD: the CD bit is not copied
	m.Compress = true          // as NSD and every server: names point to the question
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(1232, opt.Do())
	}
	if !dns.IsSubDomain(zone, name) {
		m.Rcode = dns.RcodeRefused
		return m
	}
	soa := &dns.SOA{
		Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns:  "ns." + zone, Mbox: "hostmaster." + zone,
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 30,
	}
	switch {
	case strings.HasPrefix(first, "nx"):
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa}
	case q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttlA},
			A:   net.IPv4(192, 0, 2, 1),
		}}
	case q.Qtype == dns.TypeTXT && name == bigName:
		for i := range bigTXTs {
			txt := strings.Repeat(string(rune('a'+i)), 200)
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttlA},
				Txt: []string{txt},
			})
		}
	default:
		m.Ns = []dns.RR{soa}
	}
	return m
}
