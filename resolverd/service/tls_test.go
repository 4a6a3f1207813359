package service

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/resolverclient"
	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/internal/testutil/procs"
	"github.com/shardns/shardns/internal/testutil/testcerts"
	"github.com/shardns/shardns/internal/tlsconf"
)

func TestListenDefaultsToLoopback(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("resolverd", flag.ContinueOnError)
	c.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:50051" || !tlsconf.Loopback(c.Listen) {
		t.Errorf("-listen defaults to %q; want 127.0.0.1:50051", c.Listen)
	}
}

func TestWarnPlaintext(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		warn bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50051}, false},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 3, 4), Port: 50051}, false},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 50051}, false},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 50051}, true}, // ":50051" and "0.0.0.0:50051"
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 50051}, true},
		{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 50051}, true},
		{&net.UnixAddr{Name: "/run/resolverd.sock", Net: "unix"}, true},
	} {
		var out strings.Builder
		warnPlaintext(tc.addr, slog.New(slog.NewTextHandler(&out, nil)))
		got := strings.Contains(out.String(), "level=WARN") && strings.Contains(out.String(), "plaintext on a non-loopback address") &&
			strings.Contains(out.String(), tc.addr.String())
		if got != tc.warn || (!tc.warn && out.Len() > 0) {
			t.Errorf("%s: logged %q; want a warning %v", tc.addr, out.String(), tc.warn)
		}
	}
}

// TestRunRefusesBadTLSFlags checks that Run fails at start, naming the
// flag, before it listens.
func TestRunRefusesBadTLSFlags(t *testing.T) {
	ca := testcerts.NewCA(t, "CA")
	pair := ca.Server(t, "resolverd", "127.0.0.1")
	other := ca.Server(t, "other", "127.0.0.1")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		tls  TLSFlags
		want string
	}{
		{TLSFlags{ClientCA: ca.File}, "-tls-client-ca needs -tls-cert and -tls-key"},
		{TLSFlags{Cert: pair.Cert}, "-tls-cert needs -tls-key"},
		{TLSFlags{Cert: missing, Key: pair.Key}, "-tls-cert: open " + missing},
		{TLSFlags{Cert: pair.Cert, Key: missing}, "-tls-key: open " + missing},
		{TLSFlags{Cert: pair.Cert, Key: pair.Key, ClientCA: missing}, "-tls-client-ca: open " + missing},
		{TLSFlags{Cert: pair.Cert, Key: other.Key}, "-tls-key " + other.Key + " with -tls-cert " + pair.Cert},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cfg := Config{Listen: "127.0.0.1:0", TLS: tc.tls}
		cfg.Zones = dnstest.ExampleZones(t)
		err := Run(ctx, cfg, slog.New(slog.DiscardHandler))
		cancel()
		if err == nil || !strings.HasPrefix(err.Error(), "resolverd: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want an error saying %q", tc.tls, err, tc.want)
		}
	}
}

var readyRE = regexp.MustCompile(`msg="resolverd ready" listen=(\S+) tls=(\S+)`)

// runService runs Run with cfg until the test ends and returns its
// address, its transport security as the start log says, and the log.
func runService(t *testing.T, cfg Config) (addr, mode string, logs *procs.Buffer) {
	t.Helper()
	logs = &procs.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil))) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := readyRE.FindStringSubmatch(logs.String()); m != nil {
			return m[1], m[2], logs
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("not ready:\n%s", logs.String())
	return "", "", nil
}

// TestRunServesMutualTLS runs resolverd with all three flags and asks it
// through a frontend's client with and without a good certificate.
func TestRunServesMutualTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "fleet CA")
	pair := ca.Server(t, "resolverd", "127.0.0.1")
	good := ca.Client(t, "dnsd", "dnsd")
	cfg := Config{Listen: "127.0.0.1:0", TLS: TLSFlags{Cert: pair.Cert, Key: pair.Key, ClientCA: ca.File}}
	cfg.Zones = dnstest.ExampleZones(t)
	addr, mode, logs := runService(t, cfg)
	if mode != "mutual" {
		t.Errorf("start log says tls=%s; want mutual", mode)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("a warning at start:\n%s", logs.String())
	}
	ask := func(cert testcerts.Pair) error {
		cfg, err := tlsconf.Client(tlsconf.File{Flag: "resolver-ca", Path: ca.File}, tlsconf.File{Flag: "resolver-cert", Path: cert.Cert}, tlsconf.File{Flag: "resolver-key", Path: cert.Key}, "")
		if err != nil {
			t.Fatal(err)
		}
		r, err := resolverclient.Dial([]string{addr}, resolverclient.TLSOptions(cfg)...)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q := new(dns.Msg)
		q.SetQuestion("www.example.test.", dns.TypeA)
		wire, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		ans, err := r.Resolve(ctx, wire)
		m := new(dns.Msg)
		if err == nil && m.Unpack(ans) != nil {
			t.Fatalf("unparsable answer %x", ans)
		}
		if err == nil && (len(m.Answer) != 1 || !strings.HasSuffix(m.Answer[0].String(), "192.0.2.9")) {
			t.Errorf("answer %v", m)
		}
		return err
	}
	if err := ask(good); err != nil {
		t.Errorf("good client certificate: %v", err)
	}
	if err := ask(testcerts.Pair{}); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("no client certificate: %v; want a refusal", err)
	}
	// The server logs the refusal once its side of the handshake ends,
	// which may be after the client has its error.
	refused := func(out string) bool {
		return strings.Contains(out, "refused a gRPC client's TLS handshake") && strings.Contains(out, "didn't provide a certificate")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !refused(logs.String()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if out := logs.String(); !refused(out) {
		t.Errorf("resolverd's log does not say it refused a client without a certificate:\n%s", out)
	}
}

// TestRunPlaintextLoopbackIsQuiet checks that the default kind of setup,
// plaintext on loopback, logs no warning.
func TestRunPlaintextLoopbackIsQuiet(t *testing.T) {
	cfg := Config{Listen: "127.0.0.1:0"}
	cfg.Zones = dnstest.ExampleZones(t)
	_, mode, logs := runService(t, cfg)
	if mode != "off" || strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("plaintext on loopback: tls=%s, log:\n%s", mode, logs.String())
	}
}
