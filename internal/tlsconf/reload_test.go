package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/testcerts"
	"github.com/shardns/shardns/internal/tlsconf"
)

// servedSerial handshakes with a TLS server presenting c and returns the
// serial number of the certificate it presented.
func servedSerial(t *testing.T, c *tlsconf.Certificate, ca *testcerts.CA) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.ServerConfig("dot"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_ = conn.(*tls.Conn).Handshake()
	}()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"dot"}})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	if st.NegotiatedProtocol != "dot" {
		t.Errorf("ALPN: %q, want dot", st.NegotiatedProtocol)
	}
	return st.PeerCertificates[0].SerialNumber.String()
}

func serialOf(t *testing.T, file string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(file, strings.TrimSuffix(file, ".pem")+".key")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.String()
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCertificateReload(t *testing.T) {
	ca := testcerts.NewCA(t, "reload CA")
	old := ca.Server(t, "old", "127.0.0.1")
	next := ca.Server(t, "next", "127.0.0.1")
	dir := t.TempDir()
	certFile, keyFile := dir+"/served.pem", dir+"/served.key"
	copyFile(t, old.Cert, certFile)
	copyFile(t, old.Key, keyFile)
	cert, key := tlsconf.File{Flag: "tls-cert", Path: certFile}, tlsconf.File{Flag: "tls-key", Path: keyFile}
	c, err := tlsconf.NewCertificate(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	oldSerial, nextSerial := serialOf(t, old.Cert), serialOf(t, next.Cert)
	if got := servedSerial(t, c, ca); got != oldSerial {
		t.Fatalf("served serial %s, want the old certificate's %s", got, oldSerial)
	}

	// Files changed but not reloaded: still the old one.
	copyFile(t, next.Cert, certFile)
	copyFile(t, next.Key, keyFile)
	if got := servedSerial(t, c, ca); got != oldSerial {
		t.Fatalf("before Reload: served serial %s, want the old %s", got, oldSerial)
	}
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, c, ca); got != nextSerial {
		t.Fatalf("after Reload: served serial %s, want the new %s", got, nextSerial)
	}
	if leaf, err := c.Leaf(); err != nil || leaf.SerialNumber.String() != nextSerial {
		t.Errorf("Leaf: %v, %v; want serial %s", leaf, err, nextSerial)
	}

	// Broken files: Reload says why and the served certificate stays.
	broken := []struct {
		name      string
		cert, key string // file to copy, or text to write when it starts with "text:"
		want      string
	}{
		{"garbage certificate", "text:not a certificate", next.Key, "no PEM certificate"},
		{"key of another certificate", old.Cert, next.Key, "tls-key"},
		{"empty key", next.Cert, "text:", "no PEM private key"},
		{"expired", ca.Expired(t, "expired", "127.0.0.1").Cert, dir + "/expired-key", "expired"},
	}
	copyFile(t, strings.TrimSuffix(broken[3].cert, ".pem")+".key", dir+"/expired-key")
	for _, b := range broken {
		for _, f := range []struct{ src, dst string }{{b.cert, certFile}, {b.key, keyFile}} {
			if text, ok := strings.CutPrefix(f.src, "text:"); ok {
				if err := os.WriteFile(f.dst, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				copyFile(t, f.src, f.dst)
			}
		}
		err := c.Reload()
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: Reload error %v, want one saying %q", b.name, err, b.want)
		}
		if got := servedSerial(t, c, ca); got != nextSerial {
			t.Errorf("%s: served serial %s after a failed Reload, want the one before, %s", b.name, got, nextSerial)
		}
	}
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(); err == nil || !strings.Contains(err.Error(), "-tls-cert") {
		t.Errorf("missing file: Reload error %v, want one naming -tls-cert", err)
	}

	// Other files: taken only when they load.
	if err := c.ReloadFiles(tlsconf.File{Flag: "tls-cert", Path: old.Cert}, tlsconf.File{Flag: "tls-key", Path: old.Key}); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, c, ca); got != oldSerial {
		t.Errorf("after ReloadFiles: served serial %s, want %s", got, oldSerial)
	}
}

func TestNewCertificateErrors(t *testing.T) {
	ca := testcerts.NewCA(t, "errors CA")
	pair := ca.Server(t, "s", "127.0.0.1")
	for _, tc := range []struct {
		cert, key string
		want      string
	}{
		{"", "", "-tls-cert and -tls-key are both required"},
		{pair.Cert, "", "both required"},
		{"", pair.Key, "both required"},
		{pair.Cert, pair.Cert, "no PEM private key"},
		{t.TempDir() + "/none.pem", pair.Key, "-tls-cert"},
	} {
		_, err := tlsconf.NewCertificate(tlsconf.File{Flag: "tls-cert", Path: tc.cert}, tlsconf.File{Flag: "tls-key", Path: tc.key})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewCertificate(%q, %q): %v, want an error saying %q", tc.cert, tc.key, err, tc.want)
		}
	}
}

func TestCertificateStage(t *testing.T) {
	ca := testcerts.NewCA(t, "stage CA")
	old := ca.Server(t, "old", "127.0.0.1")
	next := ca.Server(t, "next", "127.0.0.1")
	c, err := tlsconf.NewCertificate(tlsconf.File{Flag: "tls-cert", Path: old.Cert}, tlsconf.File{Flag: "tls-key", Path: old.Key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stage(tlsconf.File{Flag: "tls-cert", Path: next.Cert}, tlsconf.File{Flag: "tls-key", Path: old.Key}); err == nil {
		t.Error("Stage of a certificate with another's key: no error")
	}
	commit, err := c.Stage(tlsconf.File{Flag: "tls-cert", Path: next.Cert}, tlsconf.File{Flag: "tls-key", Path: next.Key})
	if err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, c, ca); got != serialOf(t, old.Cert) {
		t.Errorf("staged but not committed: served serial %s, want the old certificate's", got)
	}
	commit()
	if got := servedSerial(t, c, ca); got != serialOf(t, next.Cert) {
		t.Errorf("after commit: served serial %s, want the staged certificate's", got)
	}
	if err := c.Reload(); err != nil { // the staged files are the ones reloaded
		t.Fatal(err)
	}
	if got := servedSerial(t, c, ca); got != serialOf(t, next.Cert) {
		t.Errorf("Reload after commit: served serial %s, want the staged files'", got)
	}
}
