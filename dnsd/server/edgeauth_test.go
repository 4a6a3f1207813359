package server_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/server"
)

// hangBound is how long a test waits for what must happen before it calls
// it a hang; generous, since tests run on loaded machines.
const hangBound = 10 * time.Second

// privateType is a type number from the private use range (RFC 6895),
// unknown to every DNS library.
const privateType = 65280

// edgeAuth is the authServer with what the protocol edge tests add: a gate
// per name, holding that name's queries until the test opens it, and
// answers for privateType and for class CHAOS, which authServer does not
// give. It counts queries by name, type and class.
type edgeAuth struct {
	*authServer

	mu      sync.Mutex
	gates   map[string]chan struct{}
	byClass map[string]int // "name/TYPE/CLASS", name lowercased
}

// startEdgeAuth starts an edgeAuth on 127.0.0.1, UDP and TCP on one port,
// stopped when the test ends.
func startEdgeAuth(t *testing.T) *edgeAuth {
	t.Helper()
	e := &edgeAuth{
		authServer: &authServer{counts: map[string]int{}},
		gates:      map[string]chan struct{}{},
		byClass:    map[string]int{},
	}
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("auth: listen udp: %v", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue
		}
		e.addr = pc.LocalAddr().String()
		e.serve(t, &dns.Server{PacketConn: pc, Handler: e})
		e.serve(t, &dns.Server{Listener: ln, Handler: e})
		t.Cleanup(e.Stop)
		return e
	}
	t.Fatal("auth: no port free for both UDP and TCP")
	return nil
}

// hold makes queries for name wait until release is called (at the latest
// when the test ends, or after hangBound).
func (e *edgeAuth) hold(t *testing.T, name string) (release func()) {
	g := make(chan struct{})
	e.mu.Lock()
	e.gates[strings.ToLower(name)] = g
	e.mu.Unlock()
	release = sync.OnceFunc(func() { close(g) })
	t.Cleanup(release)
	return release
}

// CountClass is how many queries for name, qtype and qclass arrived.
func (e *edgeAuth) CountClass(name string, qtype, qclass uint16) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byClass[classKey(strings.ToLower(name), qtype, qclass)]
}

func classKey(name string, qtype, qclass uint16) string {
	return name + "/" + dns.Type(qtype).String() + "/" + dns.Class(qclass).String()
}

// ServeDNS counts the query, waits at its name's gate if there is one, and
// answers privateType and CHAOS itself, the rest as authServer does.
func (e *edgeAuth) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	e.mu.Lock()
	e.byClass[classKey(name, q.Qtype, q.Qclass)]++
	g := e.gates[name]
	e.mu.Unlock()
	if g != nil {
		select {
		case <-g:
		case <-time.After(hangBound):
		}
	}
	hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: q.Qclass, Ttl: ttlA}
	var rr dns.RR
	switch {
	case q.Qtype == privateType:
		rr = &dns.RFC3597{Hdr: hdr, Rdata: "deadbeef"}
	case q.Qclass == dns.ClassCHAOS && q.Qtype == dns.TypeTXT:
		rr = &dns.TXT{Hdr: hdr, Txt: []string{"chaos answer"}}
	default:
		e.authServer.ServeDNS(w, r)
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(1232, opt.Do())
	}
	m.Answer = []dns.RR{rr}
	_ = w.WriteMsg(m)
}

// edgeSetup is a dnsd server with cfg's ACL and limiter, the real lookup
// chain and resolver, forwarding to an edgeAuth.
type edgeSetup struct {
	*setup
	edge *edgeAuth
}

// newEdgeSetup starts it all, stopped when the test ends (server first).
func newEdgeSetup(t *testing.T, o options, cfg server.Config) *edgeSetup {
	t.Helper()
	e := &edgeSetup{edge: startEdgeAuth(t)}
	e.setup = &setup{auth: e.edge.authServer}
	cfg.Chain = newChain(o, newResolver(t, e.edge.addr, o.fwdTimeout))
	cfg.Budget = o.budget
	e.srv = server.New(cfg)
	if err := e.srv.Listen([]string{"127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	addrs := e.srv.Addrs()
	e.udp, e.tcp = addrs[0].String(), addrs[1].String()
	return e
}

// rawTCP sends wire behind its length on a new connection and returns the
// first reply, or nil if none comes within wait or the server closes.
func rawTCP(t *testing.T, addr string, wire []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, hangBound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(wire)))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(wire); err != nil {
		return nil // closed already
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reply cut short: %v", err)
	}
	return b
}

// rawExchange sends wire over network and returns the reply, or nil if
// none comes within wait.
func rawExchange(t *testing.T, network, addr string, wire []byte, wait time.Duration) []byte {
	t.Helper()
	if network == "tcp" {
		return rawTCP(t, addr, wire, wait)
	}
	return rawUDP(t, addr, wire, wait)
}
