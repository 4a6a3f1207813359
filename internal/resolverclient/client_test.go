package resolverclient_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/shardns/shardns/internal/resolverclient"
	"github.com/shardns/shardns/internal/testutil/zonetest"
	"github.com/shardns/shardns/resolverd/resolve"
	"github.com/shardns/shardns/resolverd/rpc"
)

// checkLeaks fails t if goroutines started during it outlive its cleanups.
// Call it first, so that its cleanup runs last.
func checkLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// resolverd runs a real resolverd gRPC server on a free loopback TCP port,
// answering www.example.test with addr from a local zone, and returns its
// address and health server.
func resolverd(t *testing.T, addr string) (string, *health.Server) {
	t.Helper()
	return startResolverd(t, addr, nil)
}

// startResolverd is resolverd serving gRPC over TLS with cfg (nil:
// plaintext).
func startResolverd(t testing.TB, addr string, cfg *tls.Config) (string, *health.Server) {
	t.Helper()
	opts := rpc.ServerOptions()
	if cfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	s := startStoppableWith(t, addr, opts...)
	return s.addr, s.hs
}

// exampleResolver answers example.test., whose www has the address addr,
// from a zone file.
func exampleResolver(t testing.TB, addr string) *resolve.Resolver {
	t.Helper()
	return zonetest.Resolver(t, nil, "example.test.zone", "$TTL 300\n"+
		"@ IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 60\n"+
		"  IN NS ns1.example.test.\n"+
		"ns1 IN A 127.0.0.53\n"+
		"www IN A "+addr+"\n")
}

// deadTCP returns a loopback address where nothing listens.
func deadTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func dial(t *testing.T, addrs ...string) *resolverclient.Client {
	t.Helper()
	r, err := resolverclient.Dial(addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// ask resolves www.example.test A through r and returns the address in the
// answer.
func ask(ctx context.Context, r *resolverclient.Client) (string, error) {
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	m, err := resolveMsg(ctx, r, q)
	if err != nil {
		return "", err
	}
	if m.Id != q.Id || len(m.Answer) != 1 {
		return "", errors.New("unexpected answer: " + m.String())
	}
	a, ok := m.Answer[0].(*dns.A)
	if !ok {
		return "", errors.New("not an A record: " + m.Answer[0].String())
	}
	return a.A.String(), nil
}

// resolveMsg packs q, has r resolve it and unpacks the answer.
func resolveMsg(ctx context.Context, r *resolverclient.Client, q *dns.Msg) (*dns.Msg, error) {
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	ans, err := r.Resolve(ctx, wire)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	return m, m.Unpack(ans)
}

func TestDialNeedsAnAddress(t *testing.T) {
	if _, err := resolverclient.Dial(nil); err == nil {
		t.Fatal("Dial(nil): want an error")
	}
}

func TestClientSkipsDeadAddress(t *testing.T) {
	checkLeaks(t)
	live, _ := resolverd(t, "192.0.2.1")
	for _, addrs := range [][]string{{deadTCP(t), live}, {live, deadTCP(t)}} {
		r := dial(t, addrs...)
		for i := range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			got, err := ask(ctx, r)
			cancel()
			if err != nil || got != "192.0.2.1" {
				t.Fatalf("%v call %d: %q %v; the dead address must be skipped", addrs, i, got, err)
			}
		}
	}
}

func TestClientAnswersNXDOMAINAsAnswer(t *testing.T) {
	checkLeaks(t)
	live, _ := resolverd(t, "192.0.2.1")
	r := dial(t, live)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []struct {
		name  string
		rcode int
	}{{"nope.example.test.", dns.RcodeNameError}, {"www.example.net.", dns.RcodeRefused}} {
		q := new(dns.Msg)
		q.SetQuestion(c.name, dns.TypeA)
		m, err := resolveMsg(ctx, r, q)
		if err != nil || m.Rcode != c.rcode || m.Id != q.Id {
			t.Errorf("%s: %v %v, want %s as an answer", c.name, m, err, dns.RcodeToString[c.rcode])
		}
	}
}

func TestClientAllDeadFailsWithinDeadline(t *testing.T) {
	checkLeaks(t)
	r := dial(t, deadTCP(t), deadTCP(t))
	const deadline = 5 * time.Second
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		_, err := ask(ctx, r)
		took := time.Since(start)
		cancel()
		if err == nil {
			t.Fatal("no resolverd is up, yet the call succeeded")
		}
		if !strings.HasPrefix(err.Error(), "resolverclient: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
		// Refused connections leave no subchannel ready: a fail-fast call
		// ends Unavailable rather than waiting for its deadline.
		if code := status.Code(err); code != codes.Unavailable {
			t.Errorf("call %d: %v (code %v), want Unavailable", i, err, code)
		}
		if took > deadline+time.Second {
			t.Errorf("call %d took %v with a %v deadline", i, took, deadline)
		}
	}
}

func TestClientRoundRobinAndHealth(t *testing.T) {
	checkLeaks(t)
	a, _ := resolverd(t, "192.0.2.1")
	b, hsB := resolverd(t, "192.0.2.2")
	r := dial(t, a, b)

	seen := map[string]int{}
	for range 40 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := ask(ctx, r)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		seen[got]++
	}
	if seen["192.0.2.1"] == 0 || seen["192.0.2.2"] == 0 {
		t.Errorf("calls spread %v, want both resolverds used", seen)
	}

	// b reports NOT_SERVING: client-side health checking takes it out of
	// rotation. Wait (bounded) for 20 answers in a row from a.
	hsB.SetServingStatus("shardns.resolver.v1.Resolver", healthpb.HealthCheckResponse_NOT_SERVING)
	run := 0
	for i := 0; i < 400 && run < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := ask(ctx, r)
		cancel()
		switch {
		case err != nil:
			t.Fatalf("with a still serving: %v", err)
		case got == "192.0.2.1":
			run++
		default:
			run = 0
			time.Sleep(10 * time.Millisecond)
		}
	}
	if run < 20 {
		t.Fatal("a NOT_SERVING resolverd stayed in rotation")
	}

	// Back to SERVING: it rejoins.
	hsB.SetServingStatus("shardns.resolver.v1.Resolver", healthpb.HealthCheckResponse_SERVING)
	back := false
	for i := 0; i < 400 && !back; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := ask(ctx, r)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if back = got == "192.0.2.2"; !back {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !back {
		t.Error("a resolverd SERVING again did not rejoin the rotation")
	}
}

func TestClientLastServerStopsThenCallsFail(t *testing.T) {
	checkLeaks(t)
	live, hs := resolverd(t, "192.0.2.1")
	r := dial(t, live)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ask(ctx, r); err != nil {
		t.Fatal(err)
	}
	// What resolverd does on SIGTERM before closing its listener.
	hs.Shutdown()
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = ask(ctx, r)
		cancel()
		if err == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("only resolverd NOT_SERVING: %v, want Unavailable", err)
	}
}
