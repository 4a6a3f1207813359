// Package tlsconf turns the PEM files a daemon's flags name into a
// tls.Config for a server or a client, at start: a missing or unreadable
// file, a file with no certificate or key in it, an expired certificate
// and a key that is not the certificate's fail there, with the flag named,
// rather than at the first handshake. GRPCClient and GRPCServer make gRPC
// credentials of a configuration that say why a handshake was refused.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// MinVersion is the lowest TLS version either side accepts.
const MinVersion = tls.VersionTLS12

// File is a PEM file and the flag that named it (without the dash), so
// that an error about the file names both.
type File struct {
	Flag string
	Path string
}

func (f File) set() bool { return f.Path != "" }

// Server returns the configuration of a server presenting the certificate
// in cert with its key in key. With clientCA, a client must present a
// certificate that chains to one of clientCA's (mutual TLS). With none of
// the three it returns nil: the server is plaintext. clientCA without a
// certificate, or one of cert and key without the other, is an error.
func Server(cert, key, clientCA File) (*tls.Config, error) {
	if !cert.set() && !key.set() && !clientCA.set() {
		return nil, nil
	}
	if !cert.set() && !key.set() {
		return nil, fmt.Errorf("tlsconf: -%s needs -%s and -%s (mutual TLS is TLS with client certificates)", clientCA.Flag, cert.Flag, key.Flag)
	}
	if err := bothOrNeither(cert, key); err != nil {
		return nil, err
	}
	pair, err := loadPair(cert, key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: MinVersion, Certificates: []tls.Certificate{pair}}
	if clientCA.set() {
		pool, err := loadPool(clientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client returns the configuration of a client that verifies the server
// against the CAs in ca (the system's roots when ca is unset), under
// serverName when it is set (else the host the client dials), and presents
// the certificate in cert with its key in key when they are set. With none
// of the four it returns nil: the client is plaintext. One of cert and key
// without the other is an error.
func Client(ca, cert, key File, serverName string) (*tls.Config, error) {
	if !ca.set() && !cert.set() && !key.set() && serverName == "" {
		return nil, nil
	}
	if err := bothOrNeither(cert, key); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: MinVersion, ServerName: serverName}
	if ca.set() {
		pool, err := loadPool(ca)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if cert.set() {
		pair, err := loadPair(cert, key)
		if err != nil {
			return nil, err
		}
		// Sent whatever CAs the server says it accepts: left to choose,
		// crypto/tls sends no certificate when none matches, and the
		// server's refusal would then read as a missing certificate
		// rather than a wrong one.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	return cfg, nil
}

// Loopback reports whether addr (host:port, or a host alone) names a
// loopback host as written: an address in 127.0.0.0/8 or ::1, or
// "localhost". Names are not looked up, so any other name is taken as
// remote.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	host, _, _ = strings.Cut(host, "%") // an IPv6 zone
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bothOrNeither wants a certificate and its key together.
func bothOrNeither(cert, key File) error {
	switch {
	case cert.set() && !key.set():
		return fmt.Errorf("tlsconf: -%s needs -%s", cert.Flag, key.Flag)
	case key.set() && !cert.set():
		return fmt.Errorf("tlsconf: -%s needs -%s", key.Flag, cert.Flag)
	}
	return nil
}

// loadPair reads a certificate chain and its private key.
func loadPair(cert, key File) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(cert.Path)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsconf: -%s: %w", cert.Flag, err)
	}
	keyPEM, err := os.ReadFile(key.Path)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsconf: -%s: %w", key.Flag, err)
	}
	certs, err := parseCerts(certPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsconf: -%s %s: %w", cert.Flag, cert.Path, err)
	}
	if !hasKey(keyPEM) {
		return tls.Certificate{}, fmt.Errorf("tlsconf: -%s %s: no PEM private key in it", key.Flag, key.Path)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsconf: -%s %s with -%s %s: %w", key.Flag, key.Path, cert.Flag, cert.Path, err)
	}
	if leaf := certs[0]; time.Now().After(leaf.NotAfter) {
		return tls.Certificate{}, fmt.Errorf("tlsconf: -%s %s: certificate %q expired at %s", cert.Flag, cert.Path, leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return pair, nil
}

// loadPool reads the CA certificates in f.
func loadPool(f File) (*x509.CertPool, error) {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: -%s: %w", f.Flag, err)
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: -%s %s: %w", f.Flag, f.Path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// parseCerts parses every CERTIFICATE block of a PEM file, and wants one
// at least.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return certs, nil
}

// hasKey reports whether data holds a PEM private key block (PKCS #8,
// PKCS #1 or SEC 1).
func hasKey(data []byte) bool {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return false
		}
		if b.Type == "PRIVATE KEY" || strings.HasSuffix(b.Type, " PRIVATE KEY") {
			return true
		}
	}
}
