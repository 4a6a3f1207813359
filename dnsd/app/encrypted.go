package app

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/shardns/shardns/dnsd/server"
	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/tlsconf"
)

// Encrypted is the flag group of dnsd's encrypted listeners: DNS over
// TLS, HTTPS and QUIC, all presenting the certificate of -tls-cert.
type Encrypted struct {
	DoT     string
	DoH     string
	DoQ     string
	TLSCert string
	TLSKey  string
}

// Register defines the group's flags on fs.
func (e *Encrypted) Register(fs *flag.FlagSet) {
	fs.StringVar(&e.DoT, "dot", "", "comma list of addresses to serve DNS over TLS on (RFC 7858, ALPN dot; port 853 by convention), e.g. :853; needs -tls-cert and -tls-key")
	fs.StringVar(&e.DoH, "doh", "", "comma list of addresses to serve DNS over HTTPS on (RFC 8484, HTTP/2 and HTTP/1.1, path /dns-query, GET and POST), e.g. :443; needs -tls-cert and -tls-key")
	fs.StringVar(&e.DoQ, "doq", "", "comma list of UDP addresses to serve DNS over QUIC on (RFC 9250, ALPN doq; port 853 by convention); needs -tls-cert and -tls-key")
	fs.StringVar(&e.TLSCert, "tls-cert", "", "PEM certificate chain presented by -dot, -doh and -doq (reloaded on SIGHUP)")
	fs.StringVar(&e.TLSKey, "tls-key", "", "PEM private key of -tls-cert (reloaded on SIGHUP)")
}

// any says whether an encrypted listener is asked for.
func (e Encrypted) any() bool { return e.DoT != "" || e.DoH != "" || e.DoQ != "" }

// Certificate loads the certificate the encrypted listeners present: nil
// when none is asked for. A listener without -tls-cert and -tls-key, or
// those without a listener, is an error.
func (e Encrypted) Certificate() (*tlsconf.Certificate, error) {
	if !e.any() {
		if e.TLSCert != "" || e.TLSKey != "" {
			return nil, fmt.Errorf("dnsd: -tls-cert and -tls-key serve -dot, -doh and -doq, and none is set")
		}
		return nil, nil
	}
	if e.TLSCert == "" || e.TLSKey == "" {
		return nil, fmt.Errorf("dnsd: -dot, -doh and -doq need -tls-cert and -tls-key (PEM files of the certificate the clients verify and its key)")
	}
	c, err := tlsconf.NewCertificate(tlsFiles(e))
	if err != nil {
		return nil, fmt.Errorf("dnsd: %w", err)
	}
	return c, nil
}

// tlsFiles are e's -tls-cert and -tls-key.
func tlsFiles(e Encrypted) (cert, key tlsconf.File) {
	return tlsconf.File{Flag: "tls-cert", Path: e.TLSCert}, tlsconf.File{Flag: "tls-key", Path: e.TLSKey}
}

// listenEncrypted starts the encrypted listeners the flags ask for on
// srv, presenting cert, and logs their addresses.
func listenEncrypted(srv *server.Server, e Encrypted, cert *tlsconf.Certificate, log *slog.Logger) error {
	if cert == nil {
		return nil
	}
	tc := cert.ServerConfig()
	attrs := []any{}
	for _, l := range []struct {
		name   string
		addrs  string
		listen func([]string, *tls.Config) ([]net.Addr, error)
	}{
		{"dot", e.DoT, srv.ListenDoT},
		{"doh", e.DoH, srv.ListenDoH},
		{"doq", e.DoQ, srv.ListenDoQ},
	} {
		addrs := config.List(l.addrs)
		if len(addrs) == 0 {
			continue
		}
		bound, err := l.listen(addrs, tc)
		if err != nil {
			return fmt.Errorf("dnsd: -%s: %w", l.name, err)
		}
		attrs = append(attrs, l.name, addrList(bound))
	}
	if leaf, err := cert.Leaf(); err == nil {
		attrs = append(attrs, "cert_names", append(leaf.DNSNames, ipStrings(leaf.IPAddresses)...), "cert_expires", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	log.Info("dnsd encrypted listeners", attrs...)
	return nil
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
