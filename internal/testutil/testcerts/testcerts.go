// Package testcerts makes certificate authorities and the certificates they
// sign for tests, with crypto/x509 (no openssl), and writes them as PEM
// files in the test's temporary folder.
package testcerts

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority whose certificate is in File.
type CA struct {
	Name string
	File string // the CA certificate, PEM
	cert *x509.Certificate
	key  crypto.Signer
	dir  string
}

// Pair is a certificate and its private key, each in a PEM file.
type Pair struct {
	Cert string
	Key  string
}

// NewCA makes a self-signed CA called name, valid from an hour ago for a
// day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"shardns tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("testcerts: CA %s: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testcerts: CA %s: %v", name, err)
	}
	dir := t.TempDir()
	ca := &CA{Name: name, cert: cert, key: key, dir: dir, File: filepath.Join(dir, "ca.pem")}
	writePEM(t, ca.File, "CERTIFICATE", der)
	return ca
}

// Server makes a server certificate for hosts (IP addresses or DNS names),
// signed by ca. The files are named after file.
func (ca *CA) Server(t testing.TB, file string, hosts ...string) Pair {
	t.Helper()
	return ca.sign(t, file, withHosts(ca.leaf(t, file, x509.ExtKeyUsageServerAuth), hosts))
}

// Node makes a certificate for hosts that serves and also dials its peers
// (as a Redis node does for replication and the cluster bus): both the
// server and the client usage.
func (ca *CA) Node(t testing.TB, file string, hosts ...string) Pair {
	t.Helper()
	return ca.sign(t, file, withHosts(ca.leaf(t, file, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth), hosts))
}

// withHosts adds hosts (IP addresses or DNS names) to tmpl's names.
func withHosts(tmpl *x509.Certificate, hosts []string) *x509.Certificate {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return tmpl
}

// Pool returns a certificate pool holding only ca's certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Client makes a client certificate with common name cn, signed by ca.
func (ca *CA) Client(t testing.TB, file, cn string) Pair {
	t.Helper()
	tmpl := ca.leaf(t, file, x509.ExtKeyUsageClientAuth)
	tmpl.Subject.CommonName = cn
	return ca.sign(t, file, tmpl)
}

// Expired makes a server certificate for hosts whose validity ended an
// hour ago.
func (ca *CA) Expired(t testing.TB, file string, hosts ...string) Pair {
	t.Helper()
	tmpl := ca.leaf(t, file, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	tmpl.DNSNames = hosts
	tmpl.NotBefore = time.Now().Add(-48 * time.Hour)
	tmpl.NotAfter = time.Now().Add(-time.Hour)
	return ca.sign(t, file, tmpl)
}

func (ca *CA) leaf(t testing.TB, name string, usage ...x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	return &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"shardns tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
	}
}

func (ca *CA) sign(t testing.TB, file string, tmpl *x509.Certificate) Pair {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatalf("testcerts: %s: %v", file, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testcerts: %s: %v", file, err)
	}
	p := Pair{Cert: filepath.Join(ca.dir, file+".pem"), Key: filepath.Join(ca.dir, file+".key")}
	writePEM(t, p.Cert, "CERTIFICATE", der)
	writePEM(t, p.Key, "PRIVATE KEY", pkcs8)
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testcerts: key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("testcerts: serial: %v", err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
}
