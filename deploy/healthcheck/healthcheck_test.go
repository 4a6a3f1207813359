package main

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shardns/shardns/internal/testutil/testcerts"
	"github.com/shardns/shardns/internal/tlsconf"
)

// check runs the command with args and returns its exit code and stderr.
func check(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	start := time.Now()
	code := run(append([]string{"-timeout", "1s"}, args...), &stderr)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("healthcheck %v hung for %v", args, d)
	}
	return code, stderr.String()
}

func wantCode(t *testing.T, want int, args ...string) {
	t.Helper()
	code, stderr := check(t, args...)
	if code != want {
		t.Errorf("healthcheck %v: exit %d, want %d; stderr: %s", args, code, want, stderr)
	}
	if want != 0 && !strings.HasPrefix(stderr, "healthcheck: ") && !strings.Contains(stderr, "usage") {
		t.Errorf("healthcheck %v failed without saying why: %q", args, stderr)
	}
}

// closedAddr is a loopback TCP and UDP address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/healthz", http.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	wantCode(t, 0, "http", srv.URL+"/healthz")
	wantCode(t, 1, "http", srv.URL+"/readyz")
	wantCode(t, 1, "http", srv.URL+"/nowhere")
	wantCode(t, 1, "http", srv.URL+"/moved") // a redirect is not health
	wantCode(t, 1, "http", "http://"+closedAddr(t)+"/healthz")
	wantCode(t, 1, "http", "::not a url")
}

func TestHTTPSlowServerTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	wantCode(t, 1, "http", srv.URL+"/healthz")
}

func TestGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("shardns.resolver.v1.Resolver", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("draining", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln)
	defer srv.Stop()
	addr := ln.Addr().String()

	wantCode(t, 0, "grpc", addr) // the server as a whole
	wantCode(t, 0, "grpc", addr, "shardns.resolver.v1.Resolver")
	wantCode(t, 1, "grpc", addr, "draining")
	wantCode(t, 1, "grpc", addr, "no.such.Service")
	hs.Shutdown() // what resolverd does on SIGTERM
	wantCode(t, 1, "grpc", addr)
	wantCode(t, 1, "grpc", closedAddr(t))
}

// startGRPC serves grpc.health.v1 (shardns.resolver.v1.Resolver SERVING)
// on loopback under tlsCfg (nil: plaintext).
func startGRPC(t *testing.T, tlsCfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	hs.SetServingStatus("shardns.resolver.v1.Resolver", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func TestGRPCOverTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "fleet CA")
	other := testcerts.NewCA(t, "other CA")
	server := ca.Server(t, "resolverd", "127.0.0.1", "resolverd.internal")
	client := ca.Client(t, "probe", "healthcheck")
	stranger := other.Client(t, "stranger", "healthcheck")
	serverTLS := func(clientCA string) *tls.Config {
		cfg, err := tlsconf.Server(tlsconf.File{Flag: "tls-cert", Path: server.Cert}, tlsconf.File{Flag: "tls-key", Path: server.Key}, tlsconf.File{Flag: "tls-client-ca", Path: clientCA})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	tlsOnly, mutual, plain := startGRPC(t, serverTLS("")), startGRPC(t, serverTLS(ca.File)), startGRPC(t, nil)
	const svc = "shardns.resolver.v1.Resolver"

	wantCode(t, 0, "-tls-ca", ca.File, "grpc", tlsOnly, svc)
	wantCode(t, 0, "-tls-ca", ca.File, "-tls-server-name", "resolverd.internal", "grpc", tlsOnly, svc)
	wantCode(t, 0, "-tls-ca", ca.File, "-tls-cert", client.Cert, "-tls-key", client.Key, "grpc", mutual, svc)
	wantCode(t, 1, "grpc", tlsOnly, svc)                                                                          // plaintext to TLS
	wantCode(t, 1, "-tls-ca", other.File, "grpc", tlsOnly, svc)                                                   // server not trusted
	wantCode(t, 1, "-tls-ca", ca.File, "-tls-server-name", "elsewhere.internal", "grpc", tlsOnly, svc)            // wrong name
	wantCode(t, 1, "-tls-ca", ca.File, "grpc", mutual, svc)                                                       // no client certificate
	wantCode(t, 1, "-tls-ca", ca.File, "-tls-cert", stranger.Cert, "-tls-key", stranger.Key, "grpc", mutual, svc) // foreign client certificate
	wantCode(t, 1, "-tls-ca", ca.File, "grpc", plain, svc)                                                        // TLS to plaintext

	// The reasons are told, and bad files named by their flag.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-tls-ca", ca.File, "grpc", mutual, svc}, "certificate required"},
		{[]string{"-tls-ca", ca.File, "-tls-cert", stranger.Cert, "-tls-key", stranger.Key, "grpc", mutual, svc}, "unknown certificate authority"},
		{[]string{"-tls-ca", other.File, "grpc", tlsOnly, svc}, "certificate signed by unknown authority"},
		{[]string{"-tls-ca", filepath.Join(t.TempDir(), "none.pem"), "grpc", tlsOnly, svc}, "-tls-ca"},
		{[]string{"-tls-ca", ca.File, "-tls-cert", client.Cert, "grpc", mutual, svc}, "-tls-cert needs -tls-key"},
		{[]string{"-tls-ca", ca.File, "-tls-cert", client.Cert, "-tls-key", stranger.Key, "grpc", mutual, svc}, "does not match"},
	} {
		code, stderr := check(t, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("healthcheck %v: exit %d, stderr %q; want 1 saying %q", tc.args, code, stderr, tc.want)
		}
	}
}

// startDNS serves every query with REFUSED on 127.0.0.1, over UDP and, if
// tcp, over TCP on the same port.
func startDNS(t *testing.T, tcp bool) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeRefused)
		w.WriteMsg(m)
	})
	pc, ln := listenDNS(t, tcp)
	servers := []*dns.Server{{PacketConn: pc, Handler: h}}
	if ln != nil {
		servers = append(servers, &dns.Server{Listener: ln, Handler: h})
	}
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	return pc.LocalAddr().String()
}

func TestDNS(t *testing.T) {
	wantCode(t, 0, "dns", startDNS(t, true)) // REFUSED is still an answer
	wantCode(t, 1, "dns", startDNS(t, false))
	wantCode(t, 1, "dns", closedAddr(t))
}

func TestDNSSilentServerTimesOut(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	wantCode(t, 1, "dns", pc.LocalAddr().String())
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"http"},
		{"ftp", "127.0.0.1:21"},
		{"dns", "127.0.0.1:53", "extra"},
		{"grpc", "127.0.0.1:50051", "svc", "extra"},
		{"-nosuchflag"},
	} {
		code, stderr := check(t, args...)
		if code != 1 || !strings.Contains(stderr, "usage") {
			t.Errorf("healthcheck %v: exit %d, stderr %q; want 1 and the usage", args, code, stderr)
		}
	}
}

// listenDNS binds UDP on a free loopback port and, if tcp, TCP on the same
// port, trying other ports while TCP's is taken.
func listenDNS(t *testing.T, tcp bool) (net.PacketConn, net.Listener) {
	t.Helper()
	const attempts = 20
	for range attempts {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if !tcp {
			return pc, nil
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatalf("no loopback port free for both UDP and TCP in %d attempts", attempts)
	return nil, nil
}
