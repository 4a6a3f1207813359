package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Certificate is a server certificate and its key, read from PEM files,
// that Reload replaces while the server runs: each handshake takes the
// certificate held at its start (GetCertificate reads an atomic pointer),
// so connections being made during a reload get the old one or the new
// one, never a mix and never an error.
type Certificate struct {
	mu        sync.Mutex // serialises reloads
	cert, key File
	cur       atomic.Pointer[tls.Certificate]
}

// NewCertificate reads the certificate in cert and its key in key. Both are
// required: an unset one is an error naming its flag, as is any error of
// Server's (unreadable file, no certificate or key in it, a key that is not
// the certificate's, an expired certificate).
func NewCertificate(cert, key File) (*Certificate, error) {
	if !cert.set() || !key.set() {
		return nil, fmt.Errorf("tlsconf: -%s and -%s are both required", cert.Flag, key.Flag)
	}
	pair, err := loadPair(cert, key)
	if err != nil {
		return nil, err
	}
	c := &Certificate{cert: cert, key: key}
	c.cur.Store(&pair)
	return c, nil
}

// Reload reads the files again and serves what they hold from the next
// handshake on. If they do not hold a valid certificate and matching key,
// it returns why and the certificate served stays as it was.
func (c *Certificate) Reload() error {
	c.mu.Lock()
	cert, key := c.cert, c.key
	c.mu.Unlock()
	return c.ReloadFiles(cert, key)
}

// ReloadFiles is Reload from other files (a reloaded configuration that
// names new ones): they replace the old only if they load.
func (c *Certificate) ReloadFiles(cert, key File) error {
	commit, err := c.Stage(cert, key)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// Stage loads cert and key as ReloadFiles does but serves them only when
// commit is called: a reload that changes several parts loads each first,
// so that one failing leaves every part as it was.
func (c *Certificate) Stage(cert, key File) (commit func(), err error) {
	if !cert.set() || !key.set() {
		return nil, fmt.Errorf("tlsconf: -%s and -%s are both required", cert.Flag, key.Flag)
	}
	pair, err := loadPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("%w (still serving the certificate loaded before)", err)
	}
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.cert, c.key = cert, key
		c.cur.Store(&pair)
	}, nil
}

// GetCertificate is the certificate to present now; it is a
// tls.Config.GetCertificate.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// Leaf is the certificate served now, parsed (its names and expiry, for a
// log line).
func (c *Certificate) Leaf() (*x509.Certificate, error) {
	p := c.cur.Load()
	if p.Leaf != nil {
		return p.Leaf, nil
	}
	if len(p.Certificate) == 0 {
		return nil, errors.New("tlsconf: empty certificate chain")
	}
	return x509.ParseCertificate(p.Certificate[0])
}

// ServerConfig is the configuration of a server presenting c, with the
// application protocols (ALPN) it accepts; a client that offers others
// fails the handshake.
func (c *Certificate) ServerConfig(alpn ...string) *tls.Config {
	return &tls.Config{MinVersion: MinVersion, GetCertificate: c.GetCertificate, NextProtos: alpn}
}
