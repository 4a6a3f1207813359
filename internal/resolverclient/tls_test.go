package resolverclient_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/shardns/shardns/internal/resolverclient"
	"github.com/shardns/shardns/internal/testutil/procs"
	"github.com/shardns/shardns/internal/testutil/testcerts"
	"github.com/shardns/shardns/internal/tlsconf"
)

// pki is a fleet's CA with resolverd's certificate and a client's, and a
// second CA that the fleet does not trust, with certificates of its own.
type pki struct {
	ca, other           *testcerts.CA
	server, client      testcerts.Pair
	strangerSrv, wrongC testcerts.Pair
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	p := &pki{ca: testcerts.NewCA(t, "fleet CA"), other: testcerts.NewCA(t, "other CA")}
	p.server = p.ca.Server(t, "resolverd", "127.0.0.1", "resolverd.internal")
	p.client = p.ca.Client(t, "dnsd", "dnsd")
	p.strangerSrv = p.other.Server(t, "impostor", "127.0.0.1")
	p.wrongC = p.other.Client(t, "intruder", "dnsd")
	return p
}

// serverTLS is resolverd's configuration from -tls-cert, -tls-key and
// -tls-client-ca.
func serverTLS(t testing.TB, pair testcerts.Pair, clientCA string) *tls.Config {
	t.Helper()
	cfg, err := tlsconf.Server(tlsconf.File{Flag: "tls-cert", Path: pair.Cert}, tlsconf.File{Flag: "tls-key", Path: pair.Key}, tlsconf.File{Flag: "tls-client-ca", Path: clientCA})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// clientTLS is a frontend's configuration from -resolver-ca,
// -resolver-cert, -resolver-key and -resolver-server-name.
func clientTLS(t testing.TB, ca string, pair testcerts.Pair, name string) *tls.Config {
	t.Helper()
	cfg, err := tlsconf.Client(tlsconf.File{Flag: "resolver-ca", Path: ca}, tlsconf.File{Flag: "resolver-cert", Path: pair.Cert}, tlsconf.File{Flag: "resolver-key", Path: pair.Key}, name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tlsResolverd runs the real resolverd gRPC service over TLS under cfg
// (nil: plaintext) on a free loopback port, answering www.example.test
// with 192.0.2.7.
func tlsResolverd(t testing.TB, cfg *tls.Config) (string, *health.Server) {
	t.Helper()
	return startResolverd(t, "192.0.2.7", cfg)
}

// dialTLS dials addr as a frontend does under cfg (nil: plaintext),
// logging to log.
func dialTLS(t testing.TB, addr string, cfg *tls.Config, log *slog.Logger) *resolverclient.Client {
	t.Helper()
	r, err := resolverclient.Dial([]string{addr}, append(resolverclient.TLSOptions(cfg), resolverclient.WithFailureLog(log, time.Hour))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// askOnce resolves www.example.test within 5 s.
func askOnce(r *resolverclient.Client) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return ask(ctx, r)
}

func TestClientTLS(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t)
	tlsOnly, _ := tlsResolverd(t, serverTLS(t, p.server, ""))
	mutual, _ := tlsResolverd(t, serverTLS(t, p.server, p.ca.File))
	discard := slog.New(slog.DiscardHandler)

	for _, tc := range []struct {
		name string
		addr string
		cfg  *tls.Config
	}{
		{"TLS, verified by -resolver-ca under the address's host", tlsOnly, clientTLS(t, p.ca.File, testcerts.Pair{}, "")},
		{"TLS under -resolver-server-name", tlsOnly, clientTLS(t, p.ca.File, testcerts.Pair{}, "resolverd.internal")},
		{"mutual TLS", mutual, clientTLS(t, p.ca.File, p.client, "")},
	} {
		r := dialTLS(t, tc.addr, tc.cfg, discard)
		for i := range 3 {
			if got, err := askOnce(r); err != nil || got != "192.0.2.7" {
				t.Errorf("%s, call %d: %q, %v; want 192.0.2.7", tc.name, i, got, err)
			}
		}
	}
}

func TestClientTLSRefusals(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t)
	tlsOnly, _ := tlsResolverd(t, serverTLS(t, p.server, ""))
	mutual, _ := tlsResolverd(t, serverTLS(t, p.server, p.ca.File))
	impostor, _ := tlsResolverd(t, serverTLS(t, p.strangerSrv, ""))

	for _, tc := range []struct {
		name string
		addr string
		cfg  *tls.Config
		why  string // in the call's error and in the log
	}{
		{"client certificate from another CA", mutual, clientTLS(t, p.ca.File, p.wrongC, ""), "unknown certificate authority"},
		{"no client certificate under mutual TLS", mutual, clientTLS(t, p.ca.File, testcerts.Pair{}, ""), "certificate required"},
		{"plaintext client of a TLS server", tlsOnly, nil, ""},
		{"server certificate from a CA the client does not trust", impostor, clientTLS(t, p.ca.File, testcerts.Pair{}, ""), "certificate signed by unknown authority"},
		{"server certificate for another name", tlsOnly, clientTLS(t, p.ca.File, testcerts.Pair{}, "elsewhere.internal"), "certificate is valid for"},
		{"TLS client of a TLS server it reaches by a name its certificate lacks", "localhost:" + port(tlsOnly), clientTLS(t, p.ca.File, testcerts.Pair{}, ""), "certificate is valid for"},
	} {
		var logs procs.Buffer
		r := dialTLS(t, tc.addr, tc.cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		for i := range 3 {
			got, err := askOnce(r)
			if err == nil {
				t.Errorf("%s, call %d: answered %q; want a refusal", tc.name, i, got)
				continue
			}
			if code := status.Code(err); code != codes.Unavailable {
				t.Errorf("%s, call %d: %v (code %v); want Unavailable", tc.name, i, err, code)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("%s, call %d: %v; want it to say %q", tc.name, i, err, tc.why)
			}
		}
		// Three failed calls, one warning (one an hour), saying why.
		if n := strings.Count(logs.String(), "resolverd unavailable"); n != 1 || !strings.Contains(logs.String(), tc.why) || !strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("%s: %d warnings; want one, at Warn, saying %q:\n%s", tc.name, n, tc.why, logs.String())
		}
	}
}

// TestClientTLSHealth checks that the gRPC health checks that take a
// resolverd out of rotation run over the mutual TLS connection: a
// resolverd that says NOT_SERVING there is skipped, and used again once it
// says SERVING.
func TestClientTLSHealth(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t)
	addr, hs := tlsResolverd(t, serverTLS(t, p.server, p.ca.File))
	r := dialTLS(t, addr, clientTLS(t, p.ca.File, p.client, ""), slog.New(slog.DiscardHandler))
	if _, err := askOnce(r); err != nil {
		t.Fatal(err)
	}
	hs.SetServingStatus("shardns.resolver.v1.Resolver", healthpb.HealthCheckResponse_NOT_SERVING)
	waitAsk(t, r, false)
	hs.SetServingStatus("shardns.resolver.v1.Resolver", healthpb.HealthCheckResponse_SERVING)
	waitAsk(t, r, true)
}

// waitAsk waits up to 5 s for calls through r to succeed (ok) or fail.
func waitAsk(t *testing.T, r *resolverclient.Client, ok bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := askOnce(r)
		if (err == nil) == ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still end with %v; want success %v", err, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWithFailureLogSpacesWarnings(t *testing.T) {
	checkLeaks(t)
	var logs procs.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r, err := resolverclient.Dial([]string{deadTCP(t)}, resolverclient.WithFailureLog(log, 300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	calls := 0
	for time.Since(start) < 700*time.Millisecond && calls < 500 {
		if _, err := askOnce(r); err == nil {
			t.Fatal("a dead address answered")
		}
		calls++
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	n := strings.Count(out, "resolverd unavailable")
	// 700 ms of failing calls, a warning at most every 300 ms: 2 or 3.
	if n < 2 || n > 3 || !strings.Contains(out, "connection refused") {
		t.Errorf("%d calls, %d warnings; want 2 or 3, saying the connection was refused:\n%s", calls, n, out)
	}
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// BenchmarkClientResolve measures one call to a local resolverd answering
// from a zone: plaintext, TLS, and mutual TLS, each with the failure log
// a frontend dials with.
func BenchmarkClientResolve(b *testing.B) {
	p := newPKI(b)
	plainAddr, _ := tlsResolverd(b, nil)
	tlsAddr, _ := tlsResolverd(b, serverTLS(b, p.server, ""))
	mutualAddr, _ := tlsResolverd(b, serverTLS(b, p.server, p.ca.File))
	for _, bc := range []struct {
		name string
		addr string
		cfg  *tls.Config
	}{
		{"plaintext", plainAddr, nil},
		{"tls", tlsAddr, clientTLS(b, p.ca.File, testcerts.Pair{}, "")},
		{"mutual", mutualAddr, clientTLS(b, p.ca.File, p.client, "")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := dialTLS(b, bc.addr, bc.cfg, slog.New(slog.DiscardHandler))
			if _, err := askOnce(r); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := askOnce(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
