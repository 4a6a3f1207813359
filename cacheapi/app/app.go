// Package app assembles cacheapi from its flags.
package app

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/shardns/shardns/cacheapi/api"
	"github.com/shardns/shardns/cacheapi/stats"
	"github.com/shardns/shardns/dnsd/acl"
	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/frontend"
	"github.com/shardns/shardns/internal/lifecycle"
	"github.com/shardns/shardns/internal/procmetrics"
)

// Config is cacheapi's flags. The embedded groups are the flags cacheapi
// shares with the other daemons (internal/config).
type Config struct {
	Listen   string
	Frontend frontend.Flags
	Access   api.Flags
	config.ClientACL
	config.Logging
	config.Drain
}

// Register defines cacheapi's flags on fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", ":8080", "HTTP listen address")
	c.Frontend.Register(fs)
	c.Access.Register(fs)
	c.ClientACL.Register(fs)
	c.Logging.Register(fs)
	c.Drain.Register(fs)
}

// Reloadable are the flags a reload (SIGHUP) may change while cacheapi
// runs; each takes effect once a part registers a reload handler for it
// (see config.Reloader.OnReload).
func (c *Config) Reloadable() []string {
	return []string{"allow", "min-ttl", "max-ttl", "max-negative-ttl", "stale", config.LogLevelFlag}
}

// Run is Serve without reloads or readiness notices.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return Serve(ctx, cfg, log, nil)
}

// Serve serves until ctx is done, then shuts down cleanly: the HTTP server
// drains (requests in flight finish, up to -drain-timeout), then the fleet
// stats publisher and the frontend stop (see internal/lifecycle). It tells
// rl once the listener is open, and the parts that change live register
// their reload handlers with rl as they start.
func Serve(ctx context.Context, cfg Config, log *slog.Logger, rl *config.Reloader[Config]) error {
	return lifecycle.Run(ctx, "cacheapi", log, cfg.DrainTimeout, func(g *lifecycle.Group) error {
		return start(g, cfg, log, rl)
	}, rl.Ready)
}

// start opens and starts cacheapi's parts in g, each after what it uses.
func start(g *lifecycle.Group, cfg Config, log *slog.Logger, rl *config.Reloader[Config]) error {
	if err := cfg.Access.Check(); err != nil {
		return fmt.Errorf("cacheapi: %w", err)
	}
	allow, err := acl.Parse(cfg.Allow)
	if err != nil {
		return fmt.Errorf("cacheapi: -allow: %w", err)
	}
	tok, err := cfg.Access.LoadToken(log)
	if err != nil {
		return fmt.Errorf("cacheapi: %w", err)
	}
	reg := procmetrics.Registry()
	if rl != nil {
		reg.MustRegister(rl.Collector())
	}
	fe, err := frontend.Build(cfg.Frontend, nil, reg, log)
	if err != nil {
		return fmt.Errorf("cacheapi: %w", err)
	}
	g.OnClose("frontend", fe.Close)
	g.Add("fleet stats", fe.StatsPublisher("cacheapi", reg, log))
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cacheapi: listen %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler: api.New(api.Config{
			Chain: fe.Chain, Gatherer: reg, Logger: log,
			Cache: fe, Ready: fe, Token: tok, Rate: cfg.Access.Rate,
			Listen: cfg.Listen, Hosts: append(cfg.Access.HostList(), boundHost(ln.Addr())...), ACL: allow,
			Stats: stats.Of(fe.StatsSource()), Jobs: api.JobsOf(fe.Queue),
		}),
		// ReadTimeout leaves room for a POST /jobs upload of a large CSV.
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 60 * time.Second, WriteTimeout: 10 * time.Second,
	}
	g.Add("http", lifecycle.HTTPServer(srv, ln))
	rl.OnReload(func(_ context.Context, next Config) error {
		return reload(next, allow, fe.Chain)
	}, "allow", "min-ttl", "max-ttl", "max-negative-ttl", "stale")
	log.Info("cacheapi ready", "listen", ln.Addr().String(), "allow", allow.String(), "http_rate", cfg.Access.Rate)
	return nil
}

// boundHost is the address ln is bound to, as a Host the API answers to,
// when -listen named the host by a name; none for a wildcard address.
func boundHost(a net.Addr) []string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		return nil
	}
	return []string{tcp.IP.String()}
}

// rules is what reload changes in the lookup chain (lookup.Chain).
type rules interface {
	SetRules(policy dnsmsg.Policy, stale time.Duration)
}

// reload applies next's -allow and cache rules to allow and chain: both
// are checked before either changes, so an error leaves cacheapi as it
// was.
func reload(next Config, allow *acl.ACL, chain rules) error {
	a, err := acl.Parse(next.Allow)
	if err != nil {
		return fmt.Errorf("cacheapi: -allow: %w", err)
	}
	r, err := next.Frontend.Rules()
	if err != nil {
		return fmt.Errorf("cacheapi: %w", err)
	}
	allow.Set(a)
	chain.SetRules(r.Policy, r.Stale)
	return nil
}
