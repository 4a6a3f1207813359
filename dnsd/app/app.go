// Package app assembles dnsd from its flags: the cache tiers, the resolver
// (resolverd over gRPC, or in-process: local zones and upstreams), the
// lookup chain, the DNS listeners and the optional HTTP API.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shardns/shardns/cacheapi/api"
	"github.com/shardns/shardns/cacheapi/stats"
	"github.com/shardns/shardns/dnsd/acl"
	"github.com/shardns/shardns/dnsd/cookie"
	"github.com/shardns/shardns/dnsd/ratelimit"
	"github.com/shardns/shardns/dnsd/server"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/dnstaplog"
	"github.com/shardns/shardns/internal/frontend"
	"github.com/shardns/shardns/internal/httpserve"
	"github.com/shardns/shardns/internal/lifecycle"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/pprofhttp"
	"github.com/shardns/shardns/internal/procmetrics"
	"github.com/shardns/shardns/internal/querylog"
	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/recurse/redisstate"
	"github.com/shardns/shardns/resolverd/resolve"
)

// DefaultHTTP is -http's default: the REST API and the status page on
// loopback only, so that `dnsd` alone shows its cache to whoever runs it
// and to nobody else.
const DefaultHTTP = "127.0.0.1:8080"

// Config is dnsd's flags. The embedded groups are the flags dnsd shares
// with the other daemons (internal/config).
type Config struct {
	Listen   string
	Frontend frontend.Flags
	config.Resolving
	config.Diagnostics
	config.ClientACL
	config.Logging
	config.Drain
	Encrypted
	config.DnstapOutput
	config.QueryLogOutput
	ResolvConf string
	HTTP       string
	HTTPAccess api.Flags
	RateLimit  float64
	RateSlip   int
	Cookies    bool
	CookieFile string
	MaxTCP     int
	MaxTCPPer  int
}

// Register defines dnsd's flags on fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", ":5353", "comma list of addresses to serve DNS on, UDP and TCP")
	c.Frontend.Register(fs)
	c.Resolving.Register(fs)
	c.Diagnostics.Register(fs)
	c.ClientACL.Register(fs)
	c.Logging.Register(fs)
	c.Drain.Register(fs)
	c.Encrypted.Register(fs)
	c.DnstapOutput.Register(fs)
	c.QueryLogOutput.Register(fs)
	fs.StringVar(&c.ResolvConf, "resolv-conf", "/etc/resolv.conf", "where the default upstreams are read from")
	fs.StringVar(&c.HTTP, "http", DefaultHTTP, "serve the REST API (lookups, health, metrics, /stats) and the status page in-process on this address; '' serves none; its /lookup and /dns-query obey -allow; an address already in use stops dnsd at start")
	c.HTTPAccess.Register(fs)
	fs.Float64Var(&c.RateLimit, "rate-limit", 0, "UDP queries per second allowed per client /24 (IPv4) or /56 (IPv6); 0 turns rate limiting off")
	fs.IntVar(&c.RateSlip, "rate-slip", 2, "every Nth over-limit UDP query is answered empty with TC=1 (so real clients retry over TCP), the rest dropped; 0 drops all")
	fs.BoolVar(&c.Cookies, "cookies", true, "DNS server cookies (RFC 7873, RFC 9018): replies carry one; a UDP client returning a valid one skips -rate-limit, a bad one gets BADCOOKIE; false ignores COOKIE options")
	fs.StringVar(&c.CookieFile, "cookie-secret-file", "", "file holding the server cookie secret as 32 hex digits (a second line: the previous secret, still accepted); share it across the fleet's frontends; empty: a random secret per process")
	fs.IntVar(&c.MaxTCP, "max-tcp-conns", 1024, "open TCP connections at most; more are closed at once")
	fs.IntVar(&c.MaxTCPPer, "max-tcp-per-client", transport.DefaultMaxTCPPerClient, "open TCP connections at most per client (IPv4 address, IPv6 /64); more are closed at once; at most -max-tcp-conns")
}

// Reloadable are the flags a reload (SIGHUP) may change while dnsd runs;
// each takes effect once a part registers a reload handler for it (see
// config.Reloader.OnReload).
func (c *Config) Reloadable() []string {
	return []string{"zones", "upstream", "trusted-upstream", "forward", "recurse", "root-hints", "trust-anchor", "dnssec", "allow", "rate-limit", "rate-slip",
		"min-ttl", "max-ttl", "max-negative-ttl", "stale", "tls-cert", "tls-key", config.LogLevelFlag}
}

// Run is Serve without reloads or readiness notices.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return Serve(ctx, cfg, log, nil)
}

// Serve serves until ctx is done, then shuts down cleanly: the listeners
// drain (queries in flight are answered, up to -drain-timeout), then the
// fleet stats publisher, the frontend and the in-process resolver stop, in
// the reverse order of starting (see internal/lifecycle). It tells rl once
// every listener is open, and the parts that change live register their
// reload handlers with rl as they start.
func Serve(ctx context.Context, cfg Config, log *slog.Logger, rl *config.Reloader[Config]) error {
	listen := config.List(cfg.Listen)
	if len(listen) == 0 {
		return errors.New("dnsd: -listen is empty")
	}
	return lifecycle.Run(ctx, "dnsd", log, cfg.DrainTimeout, func(g *lifecycle.Group) error {
		return start(g, cfg, listen, log, rl)
	}, rl.Ready)
}

// start opens and starts dnsd's parts in g, each after what it uses.
func start(g *lifecycle.Group, cfg Config, listen []string, log *slog.Logger, rl *config.Reloader[Config]) error {
	reg := procmetrics.Registry()
	// The logs close after the server and the resolver that write them.
	tap, err := dnstaplog.FromFlags(g, cfg.DnstapOutput, reg, log)
	if err != nil {
		return fmt.Errorf("dnsd: %w", err)
	}
	qlog, err := querylog.FromFlags(g, cfg.QueryLogOutput, reg, log)
	if err != nil {
		return fmt.Errorf("dnsd: %w", err)
	}
	if rl != nil {
		reg.MustRegister(rl.Collector())
	}
	var (
		res   lookup.Resolver   // nil: -resolver names resolverd
		local *resolve.Resolver // the same, when in-process
	)
	if cfg.Frontend.Resolver == "" {
		share, err := sharedState(g, cfg, reg, log)
		if err != nil {
			return err
		}
		if local, err = newInProcess(cfg, listen, reg, log, upstreamTap(tap), share); err != nil {
			return err
		}
		g.OnClose("in-process resolver", local.Close)
		res = local
	}
	fl := cfg.Frontend
	fl.WriteBehind = true // answers do not wait for the shared tier
	fe, err := frontend.Build(fl, res, reg, log)
	if err != nil {
		return fmt.Errorf("dnsd: %w", err)
	}
	g.OnClose("frontend", fe.Close)
	g.Add("fleet stats", fe.StatsPublisher("dnsd", reg, log))

	allow, err := acl.Parse(cfg.Allow)
	if err != nil {
		return fmt.Errorf("dnsd: -allow: %w", err)
	}
	cookies, err := newCookies(cfg, log)
	if err != nil {
		return err
	}
	cert, err := cfg.Encrypted.Certificate()
	if err != nil {
		return err
	}
	var apiToken string
	if cfg.HTTP != "" {
		if err := cfg.HTTPAccess.Check(); err != nil {
			return fmt.Errorf("dnsd: %w", err)
		}
		if apiToken, err = cfg.HTTPAccess.LoadToken(log); err != nil {
			return fmt.Errorf("dnsd: %w", err)
		}
	}
	limiter := ratelimit.New(rateLimits(cfg))
	srv := server.New(server.Config{
		Chain:      fe.Chain,
		ACL:        allow,
		Limiter:    limiter,
		Cookies:    cookies,
		Logger:     log,
		Registerer: reg,
		Transport:  transport.Config{MaxTCPConns: cfg.MaxTCP, MaxTCPPerClient: cfg.MaxTCPPer},
		Dnstap:     tap,
		QueryLog:   qlog,
	})
	// Added before Listen: a listen that fails part way releases what did
	// bind when the group stops.
	g.Add("dns server", lifecycle.Part{Drain: srv.Shutdown})
	if err := srv.Listen(listen); err != nil {
		return fmt.Errorf("dnsd: %w", err)
	}
	if err := listenEncrypted(srv, cfg.Encrypted, cert, log); err != nil {
		return err
	}
	https, err := httpserve.StartAll(log,
		httpserve.Side{Addr: cfg.HTTP, Flag: "-http", WriteTimeout: 10 * time.Second, Handler: func() http.Handler {
			return api.New(api.Config{
				Chain: fe.Chain, Gatherer: reg, Logger: log,
				Cache: fe, Ready: fe, Stats: stats.Of(fe.StatsSource()), Jobs: api.JobsOf(fe.Queue),
				Token: apiToken, Listen: cfg.HTTP, Hosts: cfg.HTTPAccess.HostList(), ACL: allow, Rate: cfg.HTTPAccess.Rate,
			})
		}},
		httpserve.Side{Addr: cfg.Metrics, WriteTimeout: 10 * time.Second, Handler: func() http.Handler {
			return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		}},
		httpserve.Side{Addr: cfg.Pprof, Handler: pprofhttp.Handler},
	)
	if err != nil {
		return fmt.Errorf("dnsd: %w", err)
	}
	for _, h := range https {
		g.Add("http "+h.Addr, lifecycle.HTTPServer(h, nil))
	}
	l := &live{listen: listen, res: local, fe: fe, allow: allow, limiter: limiter, cert: cert, qlog: qlog, log: log}
	l.register(rl)
	log.Info("dnsd ready", "mode", mode(cfg), "listen", cfg.Listen, "bound", addrList(srv.Addrs()), "allow", allow.String(), "rate_limit", cfg.RateLimit, "cookies", cfg.Cookies)
	return nil
}

// addrList is addrs as a comma list, for the start log.
func addrList(addrs []net.Addr) string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.Network() + "/" + a.String()
	}
	return strings.Join(out, ",")
}

// newCookies is the server cookie issuer the flags ask for: nil with
// -cookies=false, keyed with -cookie-secret-file or else a random secret.
func newCookies(cfg Config, log *slog.Logger) (*cookie.Issuer, error) {
	if !cfg.Cookies {
		if cfg.CookieFile != "" {
			log.Warn("-cookie-secret-file is ignored: -cookies is false")
		}
		return nil, nil
	}
	var secrets []cookie.Secret
	if cfg.CookieFile != "" {
		ss, err := cookie.ReadSecrets(cfg.CookieFile)
		if err != nil {
			return nil, fmt.Errorf("dnsd: -cookie-secret-file: %w", err)
		}
		if fi, err := os.Stat(cfg.CookieFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("the cookie secret file is readable by others: anyone who reads it can forge cookies that skip the rate limit", "file", cfg.CookieFile, "mode", fi.Mode().Perm().String())
		}
		secrets = ss
	} else {
		sec, err := cookie.NewSecret()
		if err != nil {
			return nil, fmt.Errorf("dnsd: %w", err)
		}
		secrets = []cookie.Secret{sec}
	}
	c, err := cookie.New(cookie.Config{Secrets: secrets})
	if err != nil {
		return nil, fmt.Errorf("dnsd: %w", err)
	}
	return c, nil
}

func mode(cfg Config) string {
	if cfg.Frontend.Resolver == "" {
		return "all-in-one"
	}
	return "frontend"
}

// newInProcess is the all-in-one resolver, built as resolverd builds its
// own (resolve.Open): local zones, then upstreams, by default the servers
// of -resolv-conf that are not dnsd itself. share, when set, gives its
// iterator the fleet's shared state (see sharedState).
func newInProcess(cfg Config, listen []string, reg prometheus.Registerer, log *slog.Logger, tap forward.Tap, share func(*resolve.Config) error) (*resolve.Resolver, error) {
	rcfg, err := InProcessConfig(cfg, listen)
	if err != nil {
		return nil, err
	}
	rcfg.Registerer, rcfg.Logger, rcfg.Tap = reg, log, tap
	if share != nil {
		if err := share(&rcfg); err != nil {
			return nil, fmt.Errorf("dnsd: %w", err)
		}
	}
	res, err := resolve.Open(rcfg)
	if err != nil {
		return nil, fmt.Errorf("dnsd: %w", err)
	}
	return res, nil
}

// sharedState is, for an all-in-one dnsd that recurses and has cache
// shards (-recurse and -redis), what gives its iterator the fleet's shared
// resolver state (redisstate.Share), as resolverd's: delegations, answers
// and server state in the shards, so that several all-in-one dnsds, or
// they and resolverds, learn the way to a zone once. The state has a
// client of its own, closed with g after the resolver and the state's
// writers. Otherwise it is nil.
func sharedState(g *lifecycle.Group, cfg Config, reg prometheus.Registerer, log *slog.Logger) (func(*resolve.Config) error, error) {
	if !cfg.Recurse || cfg.Frontend.Redis == "" {
		return nil, nil
	}
	// No Registerer: the frontend's own client registers the tier's metrics.
	shards, err := cfg.Frontend.Tiers.OpenShards(context.Background(), nil, log)
	if err != nil {
		return nil, fmt.Errorf("dnsd: shared resolver state: %w", err)
	}
	g.OnClose("shared resolver state shards", shards.Close)
	return func(rcfg *resolve.Config) error {
		closeState, err := redisstate.Share(rcfg, shards, cfg.Frontend.RedisTimeout, reg, log)
		if err != nil {
			return err
		}
		g.OnClose("shared resolver state", closeState)
		log.Info("the iterator shares its state in the cache shards", "redis", cfg.Frontend.Redis, "cluster", cfg.Frontend.RedisCluster)
		return nil
	}, nil
}

// InProcessConfig is the in-process resolver cfg's flags describe, for
// resolve.Open and, on reload, resolve.Resolver.Reload (without a
// Registerer or a Logger: the caller sets them). Without -upstream and
// without a "." group in -forward, the default group is the servers of
// -resolv-conf that are not dnsd itself (listen), unless -recurse
// resolves those names from the root.
func InProcessConfig(cfg Config, listen []string) (resolve.Config, error) {
	routes, err := forward.ParseRoutes(cfg.Forward)
	if err != nil {
		return resolve.Config{}, fmt.Errorf("dnsd: -forward: %w", err)
	}
	ups := config.List(cfg.Upstream)
	if len(ups) == 0 && !forward.HasDefault(routes) && !cfg.Recurse {
		ups = systemUpstreams(cfg.ResolvConf, listen)
	}
	if len(ups) == 0 && len(routes) == 0 && cfg.Zones == "" && !cfg.Recurse {
		return resolve.Config{}, fmt.Errorf("dnsd: no upstream: %s names none but dnsd itself; set -upstream", cfg.ResolvConf)
	}
	validate, err := dnssecMode(cfg.Resolving)
	if err != nil {
		return resolve.Config{}, fmt.Errorf("dnsd: %w", err)
	}
	return resolve.Config{
		Upstreams: ups, Forward: routes, Trusted: config.List(cfg.Trusted), Zones: cfg.Zones,
		Recurse: cfg.Recurse, RootHints: cfg.RootHints,
		DNSSEC: validate && cfg.Recurse, TrustAnchor: cfg.TrustAnchor,
	}, nil
}

// dnssecMode reports whether r asks for DNSSEC validation (-dnssec); a
// Config built without flags (DNSSEC "") takes the flag's default.
func dnssecMode(r config.Resolving) (bool, error) {
	if r.DNSSEC == "" {
		r.DNSSEC = config.DNSSECValidate
	}
	return r.ValidateDNSSEC()
}
