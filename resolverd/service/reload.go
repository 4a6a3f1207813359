package service

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/tlsconf"
	"github.com/shardns/shardns/resolverd/resolve"
	"github.com/shardns/shardns/resolverd/warm"
)

// serverTLS is the gRPC server's TLS configuration the flags ask for (nil:
// plaintext), presenting a certificate a reload can replace (nil without
// TLS).
func serverTLS(f TLSFlags) (*tls.Config, *tlsconf.Certificate, error) {
	certFile, keyFile := tlsFiles(f)
	cfg, err := tlsconf.Server(certFile, keyFile, tlsconf.File{Flag: "tls-client-ca", Path: f.ClientCA})
	if err != nil || cfg == nil {
		return nil, nil, wrap(err)
	}
	cert, err := tlsconf.NewCertificate(certFile, keyFile)
	if err != nil {
		return nil, nil, wrap(err)
	}
	cfg.Certificates, cfg.GetCertificate = nil, cert.GetCertificate
	return cfg, cert, nil
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("resolverd: %w", err)
}

// tlsFiles are f's -tls-cert and -tls-key.
func tlsFiles(f TLSFlags) (cert, key tlsconf.File) {
	return tlsconf.File{Flag: "tls-cert", Path: f.Cert}, tlsconf.File{Flag: "tls-key", Path: f.Key}
}

// live are the parts of a running resolverd that a reload changes.
type live struct {
	res    *resolve.Resolver
	cert   *tlsconf.Certificate // nil: plaintext gRPC
	warmer *warm.Warmer         // nil: no queue workers
	flush  resolve.FlushZone    // nil: no cache shards (-redis) to flush local zones from
	log    *slog.Logger
}

// register hands l's reload to rl with the flags it applies.
func (l *live) register(rl *config.Reloader[Config]) {
	flags := []string{"zones", "upstream", "trusted-upstream", "forward", "recurse", "root-hints", "trust-anchor", "dnssec"}
	if l.cert != nil {
		flags = append(flags, "tls-cert", "tls-key")
	}
	if l.warmer != nil {
		flags = append(flags, "min-ttl", "max-ttl", "max-negative-ttl", "stale")
	}
	rl.OnReload(l.reload, flags...)
}

// reload applies next's live settings: what can fail first (the TTL
// bounds, the certificate, then the resolver, which swaps only if all of
// it loads), then what cannot, so an error leaves resolverd as it was.
// With the fleet's cache shards, the answers of the local zones, old and
// new, are flushed from the caches after the resolver swapped.
func (l *live) reload(ctx context.Context, next Config) error {
	rules, err := next.Work.Rules()
	if err != nil {
		return fmt.Errorf("resolverd: %w", err)
	}
	commitCert := func() {}
	if l.cert != nil {
		if commitCert, err = l.cert.Stage(tlsFiles(next.TLS)); err != nil {
			return fmt.Errorf("resolverd: %w", err)
		}
	}
	rcfg, err := ResolverConfig(next)
	if err != nil {
		return err
	}
	rcfg.Logger = l.log
	if l.flush != nil {
		err = l.res.ReloadFlushing(ctx, rcfg, l.flush)
	} else {
		err = l.res.Reload(rcfg)
	}
	if err != nil {
		return fmt.Errorf("resolverd: %w", err)
	}
	commitCert()
	if l.warmer != nil {
		l.warmer.SetRules(rules.Policy, rules.Stale)
	}
	return nil
}
