package frontend

import (
	"flag"
	"log/slog"
	"time"

	"github.com/shardns/shardns/internal/resolverclient"
	"github.com/shardns/shardns/internal/tlsconf"
)

// ResolverTLS are the flags of the connections to resolverd: TLS, and the
// certificate for mutual TLS. Any of them turns TLS on.
type ResolverTLS struct {
	CA         string
	Cert       string
	Key        string
	ServerName string
}

func (r *ResolverTLS) register(fs *flag.FlagSet) {
	fs.StringVar(&r.CA, "resolver-ca", "", "PEM file of the CA certificates that verify resolverd's; turns TLS to -resolver on")
	fs.StringVar(&r.Cert, "resolver-cert", "", "PEM client certificate shown to resolverd, for its -tls-client-ca (mutual TLS; with -resolver-key); turns TLS on, verifying resolverd against the system's roots when -resolver-ca is not set")
	fs.StringVar(&r.Key, "resolver-key", "", "PEM private key of -resolver-cert")
	fs.StringVar(&r.ServerName, "resolver-server-name", "", "name resolverd's certificate must carry, when it is not the host in -resolver; turns TLS on")
}

// failureLogInterval spaces the warnings about calls no resolverd could take.
const failureLogInterval = 10 * time.Second

// dialResolver dials the resolverds at addrs over the connections r names.
// Plaintext to an address that is not loopback is allowed, with a warning.
func dialResolver(addrs []string, r ResolverTLS, log *slog.Logger) (*resolverclient.Client, error) {
	cfg, err := tlsconf.Client(
		tlsconf.File{Flag: "resolver-ca", Path: r.CA},
		tlsconf.File{Flag: "resolver-cert", Path: r.Cert},
		tlsconf.File{Flag: "resolver-key", Path: r.Key},
		r.ServerName)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		warnPlaintext(addrs, log)
	}
	return resolverclient.Dial(addrs, append(resolverclient.TLSOptions(cfg), resolverclient.WithFailureLog(log, failureLogInterval))...)
}

// warnPlaintext warns when a plaintext resolver address is not loopback.
func warnPlaintext(addrs []string, log *slog.Logger) {
	var remote []string
	for _, a := range addrs {
		if !tlsconf.Loopback(a) {
			remote = append(remote, a)
		}
	}
	if len(remote) > 0 {
		log.Warn("resolver connections are plaintext to a non-loopback address: queries and answers can be read and changed on the way; set -resolver-ca (and -resolver-cert and -resolver-key when resolverd has -tls-client-ca)",
			"resolvers", remote)
	}
}
