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
	"net/http"
	"os"
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
	"github.com/shardns/shardns/internal/frontend"
	"github.com/shardns/shardns/internal/httpserve"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/pprofhttp"
	"github.com/shardns/shardns/internal/procmetrics"
	"github.com/shardns/shardns/resolverd/resolve"
)

// Config is dnsd's flags.
type Config struct {
	Listen     string
	Frontend   frontend.Flags
	Upstream   string
	Trusted    string
	Zones      string
	ResolvConf string
	HTTP       string
	HTTPAccess api.Flags
	Metrics    string
	Pprof      string
	Allow      string
	RateLimit  float64
	RateSlip   int
	Cookies    bool
	CookieFile string
	MaxTCP     int
	MaxTCPPer  int
	LogFormat  string
	LogLevel   string
}

// Register defines dnsd's flags on fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", ":5353", "comma list of addresses to serve DNS on, UDP and TCP")
	c.Frontend.Register(fs)
	fs.StringVar(&c.Upstream, "upstream", "", "in-process resolver only: comma list of upstreams (host:port, tcp://host:port, tls://host:port); default: the servers of -resolv-conf, never dnsd itself")
	fs.StringVar(&c.Trusted, "trusted-upstream", "", "in-process resolver only: comma list of upstreams, written as in -upstream, whose AD bit is passed on (tls:// upstreams always are); AD from any other is cleared")
	fs.StringVar(&c.Zones, "zones", "", "in-process resolver only: folder of RFC 1035 zone files (*.zone, *.db) answered locally")
	fs.StringVar(&c.ResolvConf, "resolv-conf", "/etc/resolv.conf", "where the default upstreams are read from")
	fs.StringVar(&c.HTTP, "http", "", "serve the REST API (lookups, health, metrics) in-process on this address, e.g. 127.0.0.1:8080; its /lookup and /dns-query obey -allow")
	c.HTTPAccess.Register(fs)
	fs.StringVar(&c.Metrics, "metrics", "", "serve Prometheus /metrics on this address")
	fs.StringVar(&c.Pprof, "pprof", "", "serve Go's profiler (net/http/pprof, /debug/pprof/) on this address; keep it on loopback")
	fs.StringVar(&c.Allow, "allow", "", "comma list of client CIDRs allowed to query, or \"any\"; default loopback, RFC 1918, RFC 6598, RFC 4193 and link-local; others get REFUSED with EDE 18 over UDP, and their TCP connections are closed at accept")
	fs.Float64Var(&c.RateLimit, "rate-limit", 0, "UDP queries per second allowed per client /24 (IPv4) or /56 (IPv6); 0 turns rate limiting off")
	fs.IntVar(&c.RateSlip, "rate-slip", 2, "every Nth over-limit UDP query is answered empty with TC=1 (so real clients retry over TCP), the rest dropped; 0 drops all")
	fs.BoolVar(&c.Cookies, "cookies", true, "DNS server cookies (RFC 7873, RFC 9018): replies carry one; a UDP client returning a valid one skips -rate-limit, a bad one gets BADCOOKIE; false ignores COOKIE options")
	fs.StringVar(&c.CookieFile, "cookie-secret-file", "", "file holding the server cookie secret as 32 hex digits (a second line: the previous secret, still accepted); share it across the fleet's frontends; empty: a random secret per process")
	fs.IntVar(&c.MaxTCP, "max-tcp-conns", 1024, "open TCP connections at most; more are closed at once")
	fs.IntVar(&c.MaxTCPPer, "max-tcp-per-client", transport.DefaultMaxTCPPerClient, "open TCP connections at most per client (IPv4 address, IPv6 /64); more are closed at once; at most -max-tcp-conns")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// Run serves until ctx is done, then shuts down cleanly.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	reg := procmetrics.Registry()
	listen := config.List(cfg.Listen)
	if len(listen) == 0 {
		return errors.New("dnsd: -listen is empty")
	}

	var res lookup.Resolver // nil: -resolver names resolverd
	if cfg.Frontend.Resolver == "" {
		local, err := newInProcess(cfg, listen, reg, log)
		if err != nil {
			return err
		}
		defer local.Close()
		res = local
	}
	fl := cfg.Frontend
	fl.WriteBehind = true // answers do not wait for the shared tier
	fe, err := frontend.Build(fl, res, reg, log)
	if err != nil {
		return fmt.Errorf("dnsd: %w", err)
	}
	defer fe.Close()
	statsCtx, stopStats := context.WithCancel(ctx)
	waitStats := fe.PublishStats(statsCtx, "dnsd", reg, log)
	defer func() { stopStats(); waitStats() }()

	allow, err := acl.Parse(cfg.Allow)
	if err != nil {
		return fmt.Errorf("dnsd: -allow: %w", err)
	}
	cookies, err := newCookies(cfg, log)
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
	slip := cfg.RateSlip
	if slip == 0 {
		slip = ratelimit.NoSlip
	}
	srv := server.New(server.Config{
		Chain:      fe.Chain,
		ACL:        allow,
		Limiter:    ratelimit.New(ratelimit.Config{Rate: cfg.RateLimit, Slip: slip}),
		Cookies:    cookies,
		Logger:     log,
		Registerer: reg,
		Transport:  transport.Config{MaxTCPConns: cfg.MaxTCP, MaxTCPPerClient: cfg.MaxTCPPer},
	})
	if err := srv.Listen(listen); err != nil {
		srv.Shutdown(context.Background()) // release what did bind
		return fmt.Errorf("dnsd: %w", err)
	}
	https, err := httpserve.StartAll(log,
		httpserve.Side{Addr: cfg.HTTP, WriteTimeout: 10 * time.Second, Handler: func() http.Handler {
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
		srv.Shutdown(context.Background())
		return fmt.Errorf("dnsd: %w", err)
	}
	log.Info("dnsd ready", "mode", mode(cfg), "listen", cfg.Listen, "allow", allow.String(), "rate_limit", cfg.RateLimit, "cookies", cfg.Cookies)
	<-ctx.Done()
	log.Info("dnsd shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := []error{srv.Shutdown(sctx)}
	for _, h := range https {
		errs = append(errs, h.Shutdown(sctx))
	}
	return errors.Join(errs...)
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
// of -resolv-conf that are not dnsd itself.
func newInProcess(cfg Config, listen []string, reg prometheus.Registerer, log *slog.Logger) (*resolve.Resolver, error) {
	ups := config.List(cfg.Upstream)
	if len(ups) == 0 {
		ups = systemUpstreams(cfg.ResolvConf, listen)
	}
	if len(ups) == 0 && cfg.Zones == "" {
		return nil, fmt.Errorf("dnsd: no upstream: %s names none but dnsd itself; set -upstream", cfg.ResolvConf)
	}
	res, err := resolve.Open(resolve.Config{
		Upstreams: ups, Trusted: config.List(cfg.Trusted), Zones: cfg.Zones,
		Registerer: reg, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("dnsd: %w", err)
	}
	return res, nil
}

// LogSettings are the -log-format and -log-level values.
func (c *Config) LogSettings() (format, level string) { return c.LogFormat, c.LogLevel }
