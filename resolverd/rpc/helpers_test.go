package rpc_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/test/bufconn"

	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/resolve"
	"github.com/shardns/shardns/resolverd/rpc"
	"github.com/shardns/shardns/resolverd/zones"
)

// testZone is served locally. "out" leaves the zone for the upstream.
const testZone = `$TTL 300
@    IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 60
     IN NS  ns1.example.test.
ns1  IN A    127.0.0.53
www  IN A    192.0.2.1
www  IN AAAA 2001:db8::1
out  IN CNAME www.example.net.
`

// writeZone writes testZone into a new temporary folder and returns it.
func writeZone(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "example.test.zone"), []byte(testZone), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// upstreamAnswer is the upstream's behaviour: www.example.net has an A
// record, fail.example.net is SERVFAIL, everything else NXDOMAIN.
func upstreamAnswer(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	switch name := strings.ToLower(r.Question[0].Name); { // names are case-insensitive (RFC 4343); queries come in 0x20 case
	case name == "www.example.net." && r.Question[0].Qtype == dns.TypeA:
		rr, _ := dns.NewRR("www.example.net. 120 IN A 192.0.2.7")
		m.Answer = append(m.Answer, rr)
	case name == "fail.example.net.":
		m.Authoritative = false
		m.Rcode = dns.RcodeServerFailure
	default:
		m.Rcode = dns.RcodeNameError
		soa, _ := dns.NewRR("example.net. 60 IN SOA ns.example.net. h.example.net. 1 2 3 4 30")
		m.Ns = append(m.Ns, soa)
	}
	_ = w.WriteMsg(m)
}

// startUpstream serves upstreamAnswer over UDP on a free loopback port and
// returns its address.
func startUpstream(t testing.TB) string {
	t.Helper()
	return dnstest.StartUDP(t, dns.HandlerFunc(upstreamAnswer))
}

// deadAddr returns a loopback address where nothing listens (UDP or TCP).
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

// blackhole returns a loopback UDP address that takes queries and never
// answers.
func blackhole(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// newService builds the real backend: zones from zoneDir (none when empty)
// and a forwarder to upstreams (none when empty).
func newService(t testing.TB, zoneDir string, upstreams ...string) *rpc.Service {
	t.Helper()
	var auth resolve.Authority
	if zoneDir != "" {
		a, err := zones.Load(zoneDir)
		if err != nil {
			t.Fatal(err)
		}
		auth = a
	}
	var fwd resolve.Forwarder
	if len(upstreams) > 0 {
		f, err := forward.New(forward.Config{Upstreams: upstreams, HealthInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fwd = f
	}
	res, err := resolve.New(auth, fwd)
	if err != nil {
		t.Fatal(err)
	}
	return rpc.New(res)
}

// serveOn registers svc on a new gRPC server with resolverd's options
// serving ln until cleanup, and returns the health server Register gave
// back. The clients of the tests use the generated code's encoding, as
// CoreDNS and other clients do: what they see of the server's codec is
// what those see.
func serveOn(t testing.TB, svc *rpc.Service, ln net.Listener) *health.Server {
	t.Helper()
	srv := grpc.NewServer(rpc.ServerOptions()...)
	hs := svc.Register(srv)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Stop()
		wg.Wait()
	})
	return hs
}

// dialer connects a client to svc over one transport.
type dialer func(t testing.TB, svc *rpc.Service) (*grpc.ClientConn, *health.Server)

// serveBufconn serves svc over an in-memory bufconn listener.
func serveBufconn(t testing.TB, svc *rpc.Service) (*grpc.ClientConn, *health.Server) {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	hs := serveOn(t, svc, ln)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, hs
}

// serveTCP serves svc over real TCP on a free loopback port.
func serveTCP(t testing.TB, svc *rpc.Service) (*grpc.ClientConn, *health.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := serveOn(t, svc, ln)
	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, hs
}

// transports are the ways every service test reaches the server.
var transports = []struct {
	name string
	dial dialer
}{
	{"bufconn", serveBufconn},
	{"tcp", serveTCP},
}

// wireQuery packs a query for name and qtype with the given ID.
func wireQuery(t testing.TB, id uint16, name string, qtype uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unpack parses a wire answer.
func unpack(t testing.TB, b []byte) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("answer does not parse: %v", err)
	}
	return m
}

// callCtx is a context with a generous deadline for one call.
func callCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}
