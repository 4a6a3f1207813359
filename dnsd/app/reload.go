package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/shardns/shardns/dnsd/acl"
	"github.com/shardns/shardns/dnsd/ratelimit"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/frontend"
	"github.com/shardns/shardns/internal/querylog"
	"github.com/shardns/shardns/internal/tlsconf"
	"github.com/shardns/shardns/resolverd/resolve"
)

// flusher drops cached answers: a name and every name under it
// (frontend.Frontend.Flush).
type flusher interface {
	Flush(ctx context.Context, name string, suffix bool) (cache.FlushResult, error)
}

// ReloadResolver applies cfg's resolving flags (-upstream, -forward,
// -trusted-upstream, -zones) to res, the all-in-one dnsd's in-process
// resolver, then drops from the cache (L1, the shards and, through their
// invalidation channel, the other frontends' L1) every answer at or under
// a local zone of the old set or the new (resolve.Resolver.ReloadFlushing:
// an error changes nothing; a failed flush is logged).
func ReloadResolver(ctx context.Context, res *resolve.Resolver, fe flusher, cfg Config, listen []string, log *slog.Logger) error {
	rcfg, err := InProcessConfig(cfg, listen)
	if err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rcfg.Logger = log
	err = res.ReloadFlushing(ctx, rcfg, func(ctx context.Context, zone string) (int, error) {
		r, err := fe.Flush(ctx, zone, true)
		return r.Deleted, err
	})
	if err != nil {
		return fmt.Errorf("dnsd: %w", err)
	}
	return nil
}

// live are the parts of a running dnsd that a reload changes.
type live struct {
	listen  []string
	res     *resolve.Resolver // nil: -resolver names resolverd
	fe      *frontend.Frontend
	allow   *acl.ACL
	limiter *ratelimit.Limiter
	cert    *tlsconf.Certificate // nil: no encrypted listener
	qlog    *querylog.Logger     // nil: no query log
	log     *slog.Logger
}

// register hands l's reload to rl with the flags it applies.
func (l *live) register(rl *config.Reloader[Config]) {
	flags := []string{"allow", "rate-limit", "rate-slip", "min-ttl", "max-ttl", "max-negative-ttl", "stale"}
	if l.res != nil {
		flags = append(flags, "zones", "upstream", "trusted-upstream", "forward", "recurse", "root-hints", "trust-anchor", "dnssec")
	}
	if l.cert != nil {
		flags = append(flags, "tls-cert", "tls-key")
	}
	rl.OnReload(l.reload, flags...)
}

// reload applies next's live settings. What can fail is done first: the
// ACL and the TTL bounds are parsed, the certificate loaded, then the
// resolver reloaded (it swaps only if all of it loads). Only then are the
// rest swapped in, which cannot fail, so an error leaves dnsd as it was.
// The query log is reopened on every reload, after logrotate renamed it.
func (l *live) reload(ctx context.Context, next Config) error {
	allow, err := acl.Parse(next.Allow)
	if err != nil {
		return fmt.Errorf("dnsd: -allow: %w", err)
	}
	rules, err := next.Frontend.Rules()
	if err != nil {
		return fmt.Errorf("dnsd: %w", err)
	}
	commitCert := func() {}
	if l.cert != nil {
		if commitCert, err = l.cert.Stage(tlsFiles(next.Encrypted)); err != nil {
			return fmt.Errorf("dnsd: %w", err)
		}
	}
	if l.res != nil {
		if err := ReloadResolver(ctx, l.res, l.fe, next, l.listen, l.log); err != nil {
			return err
		}
	}
	commitCert()
	l.allow.Set(allow)
	l.limiter.Reconfigure(rateLimits(next))
	l.fe.Chain.SetRules(rules.Policy, rules.Stale)
	if l.qlog != nil {
		if err := l.qlog.Reopen(); err != nil {
			l.log.Error("the query log could not be reopened: it goes on to the file open before", "err", err)
		}
	}
	return nil
}

// rateLimits is the rate limiter cfg's flags ask for.
func rateLimits(cfg Config) ratelimit.Config {
	slip := cfg.RateSlip
	if slip == 0 {
		slip = ratelimit.NoSlip
	}
	return ratelimit.Config{Rate: cfg.RateLimit, Slip: slip}
}
