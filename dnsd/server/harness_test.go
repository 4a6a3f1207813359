package server_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/server"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/resolve"
)

// clientTimeout is how long a test client waits for an answer: what a stub
// resolver usually waits before it retries.
const clientTimeout = 2 * time.Second

// options shape one test setup. The zero value is an L1-only cache in
// front of the in-process resolver, on the real clock.
type options struct {
	noL1           bool
	redis          cache.Tier       // L2, or nil
	now            func() time.Time // nil: time.Now
	stale          time.Duration
	budget         time.Duration // server budget; 0: server.DefaultBudget
	fwdTimeout     time.Duration // per upstream attempt; 0: forward's default
	resolveTimeout time.Duration // one coalesced resolver call; 0: lookup's default
}

// setup is a dnsd server on 127.0.0.1 with the real lookup chain and the
// real resolver, forwarding to an in-process authoritative server.
type setup struct {
	auth *authServer
	srv  *server.Server
	udp  string // the server's UDP address
	tcp  string // the server's TCP address
}

// inProcess is resolverd's resolver as the lookup chain sees it. It tracks
// calls under way, so a test can wait for them before it ends.
type inProcess struct {
	r        *resolve.Resolver
	inflight sync.WaitGroup
}

var _ lookup.Resolver = (*inProcess)(nil)

func (p *inProcess) Resolve(ctx context.Context, q []byte) ([]byte, error) {
	p.inflight.Add(1)
	defer p.inflight.Done()
	return p.r.Resolve(ctx, q)
}

// newResolver returns the resolver forwarding to upstream, closed when the
// test ends. Health probes are off so the upstream sees only real queries.
func newResolver(t testing.TB, upstream string, timeout time.Duration) *inProcess {
	t.Helper()
	fwd, err := forward.New(forward.Config{Upstreams: []string{upstream}, Timeout: timeout, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fwd.Close() })
	r, err := resolve.New(nil, fwd)
	if err != nil {
		t.Fatal(err)
	}
	p := &inProcess{r: r}
	t.Cleanup(p.inflight.Wait) // runs before fwd.Close
	return p
}

// newChain builds the lookup chain over o's cache tiers and res.
func newChain(o options, res lookup.Resolver) *lookup.Chain {
	var l1 cache.Tier
	if !o.noL1 {
		l1 = cache.NewMemory(cache.MemoryConfig{MaxEntries: 10_000, Now: o.now})
	}
	return lookup.Build(lookup.Config{
		Store:          cache.NewLayered(l1, o.redis),
		Resolver:       res,
		Policy:         dnsmsg.Policy{MaxTTL: 86400 * time.Second},
		Stale:          o.stale,
		ResolveTimeout: o.resolveTimeout,
		WriteBehind:    true, // as dnsd builds it
		Now:            o.now,
	})
}

// startServer runs a server for chain on 127.0.0.1:0, shut down when the
// test ends.
func startServer(t testing.TB, chain server.Chain, budget time.Duration) (srv *server.Server, udp, tcp string) {
	t.Helper()
	srv = server.New(server.Config{Chain: chain, Budget: budget})
	if err := srv.Listen([]string{"127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	addrs := srv.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("Addrs() = %v, want one UDP and one TCP address", addrs)
	}
	return srv, addrs[0].String(), addrs[1].String()
}

// newSetup starts the authoritative server, the resolver, the chain and the
// server, all stopped when the test ends (server first).
func newSetup(t testing.TB, o options) *setup {
	t.Helper()
	s := &setup{auth: startAuth(t)}
	chain := newChain(o, newResolver(t, s.auth.addr, o.fwdTimeout))
	s.srv, s.udp, s.tcp = startServer(t, chain, o.budget)
	return s
}

// addr is the server's address for network "udp" or "tcp".
func (s *setup) addr(network string) string {
	if network == "tcp" {
		return s.tcp
	}
	return s.udp
}

// query returns a query for name and qtype with RD set and the given ID.
func query(name string, qtype uint16, id uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	return m
}

// ednsQuery is query with an OPT record of the given size and DO bit.
func ednsQuery(name string, qtype uint16, id uint16, size uint16, do bool) *dns.Msg {
	m := query(name, qtype, id)
	m.SetEdns0(size, do)
	return m
}

// exchange sends m to addr over network with the Go client and returns the
// reply; it fails the test on any error, ID mismatch included.
func exchange(t testing.TB, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: clientTimeout, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s query %s %s: %v", network, m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], err)
	}
	if r.Id != m.Id {
		t.Fatalf("reply ID %d, query ID %d", r.Id, m.Id)
	}
	return r
}

// rawUDP sends wire to addr and returns the first datagram that comes back,
// or nil if none does within wait.
func rawUDP(t testing.TB, addr string, wire []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(wire); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// pack packs m or fails the test.
func pack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unpack parses a reply or fails the test.
func unpack(t testing.TB, b []byte) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("unparsable reply (%d bytes): %v", len(b), err)
	}
	return m
}

// ede returns the first Extended DNS Error of m's OPT record, or nil.
func ede(m *dns.Msg) *dns.EDNS0_EDE {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			return e
		}
	}
	return nil
}

// firstA returns the address of the first A record of m's answer, or "".
func firstA(m *dns.Msg) string {
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// fakeClock is a settable clock shared by the chain and L1.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder hands queries to ServeMessage as a loopback client would send
// them, and keeps the last reply's bytes.
type recorder struct {
	buf    []byte
	wire   []byte
	writes int
	udp    bool
}

// newRecorder returns a recorder for a UDP client, or a TCP one.
func newRecorder(udp bool) *recorder { return &recorder{udp: udp} }

var loopbackClient = netip.MustParseAddrPort("127.0.0.1:40000")

// serve packs q and answers it through srv.
func (w *recorder) serve(srv *server.Server, q *dns.Msg) {
	wire, err := q.PackBuffer(w.wire[:cap(w.wire)])
	if err != nil {
		panic(err)
	}
	w.wire = wire
	w.serveWire(srv, wire)
}

// serveWire answers raw bytes through srv.
func (w *recorder) serveWire(srv *server.Server, wire []byte) {
	reply := srv.ServeMessage(context.Background(), wire, transport.Peer{Addr: loopbackClient, TCP: !w.udp}, w.buf[:0])
	if reply != nil {
		w.buf = reply
		w.writes++
	}
}
