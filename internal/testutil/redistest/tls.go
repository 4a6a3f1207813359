package redistest

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/shardns/shardns/internal/testutil/testcerts"
)

// CA is a certificate authority made for one test, with a server
// certificate it signed for 127.0.0.1, ::1 and localhost. Every file is
// PEM in a directory of t.TempDir().
type CA struct {
	// CertFile is the CA's certificate: what a client given it trusts.
	CertFile string
	// ServerCert and ServerKey are the server's certificate and key.
	ServerCert, ServerKey string
	// Pool holds the CA's certificate.
	Pool *x509.CertPool
}

// NewCA makes a CA (valid for a day) and a server certificate it signed,
// which Redis also shows as a client towards other nodes (replication, the
// cluster bus). name tells CAs apart in errors.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	ca := testcerts.NewCA(t, "shardns test CA "+name)
	node := ca.Node(t, "redis-"+name, "127.0.0.1", "::1", "localhost")
	return &CA{CertFile: ca.File, ServerCert: node.Cert, ServerKey: node.Key, Pool: ca.Pool()}
}

// ClientTLS returns a client configuration that trusts only this CA.
func (ca *CA) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
}
