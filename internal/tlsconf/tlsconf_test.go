package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/procs"
	"github.com/shardns/shardns/internal/testutil/testcerts"
	"github.com/shardns/shardns/internal/tlsconf"
)

// Server-side and client-side files as resolverd and its clients name them.
func srv(cert, key, ca string) (c, k, a tlsconf.File) {
	return tlsconf.File{Flag: "tls-cert", Path: cert}, tlsconf.File{Flag: "tls-key", Path: key}, tlsconf.File{Flag: "tls-client-ca", Path: ca}
}

func cli(ca, cert, key string) (a, c, k tlsconf.File) {
	return tlsconf.File{Flag: "resolver-ca", Path: ca}, tlsconf.File{Flag: "resolver-cert", Path: cert}, tlsconf.File{Flag: "resolver-key", Path: key}
}

func TestNothingSetIsPlaintext(t *testing.T) {
	cfg, err := tlsconf.Server(srv("", "", ""))
	if cfg != nil || err != nil {
		t.Errorf("Server with no files: %v, %v; want nil, nil", cfg, err)
	}
	a, c, k := cli("", "", "")
	cfg, err = tlsconf.Client(a, c, k, "")
	if cfg != nil || err != nil {
		t.Errorf("Client with no files: %v, %v; want nil, nil", cfg, err)
	}
}

func TestServerConfig(t *testing.T) {
	ca := testcerts.NewCA(t, "server CA")
	pair := ca.Server(t, "server", "127.0.0.1")
	cfg, err := tlsconf.Server(srv(pair.Cert, pair.Key, ""))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 1 || cfg.ClientAuth != tls.NoClientCert {
		t.Errorf("TLS server: min version %x, %d certificates, client auth %v", cfg.MinVersion, len(cfg.Certificates), cfg.ClientAuth)
	}
	cfg, err = tlsconf.Server(srv(pair.Cert, pair.Key, ca.File))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		t.Errorf("mutual TLS server: client auth %v, client CAs %v", cfg.ClientAuth, cfg.ClientCAs)
	}
}

func TestClientConfig(t *testing.T) {
	ca := testcerts.NewCA(t, "CA")
	pair := ca.Client(t, "client", "dnsd")
	for _, tc := range []struct {
		name           string
		ca, cert, key  string
		serverName     string
		roots, present bool
	}{
		{name: "CA only", ca: ca.File, roots: true},
		{name: "certificate only: system roots", cert: pair.Cert, key: pair.Key, present: true},
		{name: "server name only: system roots", serverName: "resolverd.internal"},
		{name: "all", ca: ca.File, cert: pair.Cert, key: pair.Key, serverName: "resolverd.internal", roots: true, present: true},
	} {
		a, c, k := cli(tc.ca, tc.cert, tc.key)
		cfg, err := tlsconf.Client(a, c, k, tc.serverName)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if cfg.MinVersion != tls.VersionTLS12 || (cfg.RootCAs != nil) != tc.roots ||
			(cfg.GetClientCertificate != nil) != tc.present || cfg.ServerName != tc.serverName {
			t.Errorf("%s: min version %x, own roots %v, client certificate %v, server name %q",
				tc.name, cfg.MinVersion, cfg.RootCAs != nil, cfg.GetClientCertificate != nil, cfg.ServerName)
		}
	}
}

func TestErrorsNameTheFlag(t *testing.T) {
	ca := testcerts.NewCA(t, "CA")
	other := testcerts.NewCA(t, "other CA")
	pair := ca.Server(t, "server", "127.0.0.1")
	stranger := other.Server(t, "stranger", "127.0.0.1")
	expired := ca.Expired(t, "expired", "localhost")
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable.pem")
	if err := os.Mkdir(unreadable, 0o700); err != nil { // reading a folder fails
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		cert, key, ca string
		want          []string // in the error, in this order
	}{
		{"client CA without certificate", "", "", ca.File, []string{"-tls-client-ca needs -tls-cert and -tls-key"}},
		{"certificate without key", pair.Cert, "", "", []string{"-tls-cert needs -tls-key"}},
		{"key without certificate", "", pair.Key, "", []string{"-tls-key needs -tls-cert"}},
		{"missing certificate", missing, pair.Key, "", []string{"-tls-cert", missing, "no such file"}},
		{"missing key", pair.Cert, missing, "", []string{"-tls-key", missing, "no such file"}},
		{"unreadable key", pair.Cert, unreadable, "", []string{"-tls-key", unreadable, "is a directory"}},
		{"missing client CA", pair.Cert, pair.Key, missing, []string{"-tls-client-ca", missing, "no such file"}},
		{"certificate not PEM", garbage, pair.Key, "", []string{"-tls-cert", garbage, "no PEM certificate"}},
		{"key is a certificate", pair.Cert, pair.Cert, "", []string{"-tls-key", pair.Cert, "no PEM private key"}},
		{"client CA not PEM", pair.Cert, pair.Key, garbage, []string{"-tls-client-ca", garbage, "no PEM certificate"}},
		{"key of another certificate", pair.Cert, stranger.Key, "", []string{"-tls-key", stranger.Key, "-tls-cert", pair.Cert, "does not match"}},
		{"expired certificate", expired.Cert, expired.Key, "", []string{"-tls-cert", expired.Cert, "expired"}},
	} {
		cfg, err := tlsconf.Server(srv(tc.cert, tc.key, tc.ca))
		if err == nil {
			t.Errorf("%s: no error (config %v)", tc.name, cfg)
			continue
		}
		msg, at := err.Error(), 0
		for _, w := range tc.want {
			i := strings.Index(msg[at:], w)
			if i < 0 {
				t.Errorf("%s: error %q does not say %q (after %q)", tc.name, msg, w, msg[:at])
				break
			}
			at += i + len(w)
		}
	}
	// The client's flags are named the same way.
	a, c, k := cli(missing, "", "")
	if _, err := tlsconf.Client(a, c, k, ""); err == nil || !strings.Contains(err.Error(), "-resolver-ca") {
		t.Errorf("client with a missing CA file: %v; want an error naming -resolver-ca", err)
	}
	a, c, k = cli(ca.File, pair.Cert, "")
	if _, err := tlsconf.Client(a, c, k, ""); err == nil || !strings.Contains(err.Error(), "-resolver-cert needs -resolver-key") {
		t.Errorf("client certificate without key: %v", err)
	}
	a, c, k = cli(ca.File, pair.Cert, stranger.Key)
	if _, err := tlsconf.Client(a, c, k, ""); err == nil || !strings.Contains(err.Error(), "-resolver-key") {
		t.Errorf("client key of another certificate: %v", err)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:50051":     true,
		"127.8.9.10:50051":    true,
		"[::1]:50051":         true,
		"localhost:50051":     true,
		"LOCALHOST.:50051":    true,
		"127.0.0.1":           true,
		":50051":              false, // every interface
		"0.0.0.0:50051":       false,
		"[::]:50051":          false,
		"10.0.0.1:50051":      false,
		"resolverd-1:50051":   false,
		"[fe80::1%lo]:50051":  false,
		"localhost.evil:5005": false,
	} {
		if got := tlsconf.Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// handshake runs one TLS handshake over loopback TCP between a server
// with srvCfg and a client with cliCfg, and returns each side's error.
// A server that refuses a client's certificate tells it with an alert
// after the client's handshake is done (TLS 1.3), so the client reads
// once to learn of it.
func handshake(t *testing.T, srvCfg, cliCfg *tls.Config) (srvErr, cliErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		s := tls.Server(c, srvCfg)
		if err := s.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = s.Write([]byte("ok"))
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	cc := tls.Client(c, cliCfg)
	cliErr = cc.Handshake()
	if cliErr == nil {
		_, cliErr = io.ReadFull(cc, make([]byte, 2))
	}
	cc.Close()
	return <-done, cliErr
}

func TestHandshakes(t *testing.T) {
	ca := testcerts.NewCA(t, "fleet CA")
	other := testcerts.NewCA(t, "other CA")
	server := ca.Server(t, "resolverd", "127.0.0.1", "resolverd.internal")
	good := ca.Client(t, "dnsd", "dnsd")
	wrong := other.Client(t, "intruder", "dnsd")

	tlsOnly, err := tlsconf.Server(srv(server.Cert, server.Key, ""))
	if err != nil {
		t.Fatal(err)
	}
	mutual, err := tlsconf.Server(srv(server.Cert, server.Key, ca.File))
	if err != nil {
		t.Fatal(err)
	}
	client := func(caFile string, pair testcerts.Pair, name string) *tls.Config {
		t.Helper()
		a, c, k := cli(caFile, pair.Cert, pair.Key)
		cfg, err := tlsconf.Client(a, c, k, name)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	for _, tc := range []struct {
		name         string
		server       *tls.Config
		client       *tls.Config
		ok           bool
		srvErr       string // in the server's error when refused
		cliErrOrNone string // in the client's error when refused
	}{
		{"TLS", tlsOnly, client(ca.File, testcerts.Pair{}, "127.0.0.1"), true, "", ""},
		{"TLS under another name", tlsOnly, client(ca.File, testcerts.Pair{}, "resolverd.internal"), true, "", ""},
		{"mutual TLS", mutual, client(ca.File, good, "127.0.0.1"), true, "", ""},
		{"name not in the certificate", tlsOnly, client(ca.File, testcerts.Pair{}, "elsewhere.internal"), false, "", "certificate is valid for"},
		{"server from an untrusted CA", tlsOnly, client(other.File, testcerts.Pair{}, "127.0.0.1"), false, "", "certificate signed by unknown authority"},
		{"client certificate from another CA", mutual, client(ca.File, wrong, "127.0.0.1"), false, "certificate signed by unknown authority", "unknown certificate authority"},
		{"no client certificate", mutual, client(ca.File, testcerts.Pair{}, "127.0.0.1"), false, "didn't provide a certificate", "certificate required"},
	} {
		srvErr, cliErr := handshake(t, tc.server, tc.client)
		if tc.ok {
			if srvErr != nil || cliErr != nil {
				t.Errorf("%s: server %v, client %v; want both through", tc.name, srvErr, cliErr)
			}
			continue
		}
		if cliErr == nil || !strings.Contains(cliErr.Error(), tc.cliErrOrNone) {
			t.Errorf("%s: client error %v; want one saying %q", tc.name, cliErr, tc.cliErrOrNone)
		}
		if tc.srvErr != "" && (srvErr == nil || !strings.Contains(srvErr.Error(), tc.srvErr)) {
			t.Errorf("%s: server error %v; want one saying %q", tc.name, srvErr, tc.srvErr)
		}
	}

	// Below TLS 1.2 the server refuses, even where crypto/tls's own
	// default would let it through.
	t.Setenv("GODEBUG", "tls10server=1")
	old := client(ca.File, testcerts.Pair{}, "127.0.0.1")
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	srvErr, cliErr := handshake(t, tlsOnly, old)
	if srvErr == nil || !strings.Contains(srvErr.Error(), "unsupported versions") {
		t.Errorf("TLS 1.1 client: server error %v; want a refusal of the version", srvErr)
	}
	if cliErr == nil || !strings.Contains(cliErr.Error(), "protocol version not supported") {
		t.Errorf("TLS 1.1 client: client error %v; want the server's alert", cliErr)
	}
}

func TestGRPCServerLogsRefusals(t *testing.T) {
	ca := testcerts.NewCA(t, "CA")
	pair := ca.Server(t, "resolverd", "127.0.0.1")
	cfg, err := tlsconf.Server(srv(pair.Cert, pair.Key, ca.File))
	if err != nil {
		t.Fatal(err)
	}
	var logs procs.Buffer
	creds := tlsconf.GRPCServer(cfg, slog.New(slog.NewTextHandler(&logs, nil)), time.Hour)
	handshake := func(client func(net.Conn)) error {
		s, c := net.Pipe()
		defer s.Close()
		go func() { client(c); c.Close() }()
		s.SetDeadline(time.Now().Add(5 * time.Second))
		_, _, err := creds.ServerHandshake(s)
		return err
	}
	// A connection closed at once, as a TCP probe does: refused, not logged.
	if err := handshake(func(net.Conn) {}); err == nil {
		t.Fatal("empty connection: handshake succeeded")
	}
	if logs.String() != "" {
		t.Errorf("a closed connection was logged: %s", logs.String())
	}
	// A client with no certificate, three times: one warning an hour.
	for range 3 {
		err := handshake(func(c net.Conn) {
			cc := tls.Client(c, &tls.Config{ServerName: "127.0.0.1", RootCAs: pool(t, ca.File)})
			cc.Handshake()
			cc.Read(make([]byte, 1))
		})
		if err == nil {
			t.Fatal("client without a certificate: handshake succeeded")
		}
	}
	out := logs.String()
	if n := strings.Count(out, "refused a gRPC client's TLS handshake"); n != 1 || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "didn't provide a certificate") {
		t.Errorf("%d warnings; want one saying the client gave no certificate:\n%s", n, out)
	}
}

func pool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	a, c, k := cli(file, "", "")
	cfg, err := tlsconf.Client(a, c, k, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg.RootCAs
}
