// Package service assembles resolverd from its flags: local zones, the
// upstream forwarder, and the gRPC server with health and reflection.
package service

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/httpserve"
	"github.com/shardns/shardns/internal/lifecycle"
	"github.com/shardns/shardns/internal/pprofhttp"
	"github.com/shardns/shardns/internal/procmetrics"
	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/rawconn"
	"github.com/shardns/shardns/internal/tlsconf"
	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/resolve"
	"github.com/shardns/shardns/resolverd/rpc"
)

// Config is resolverd's flags. The embedded groups are the flags
// resolverd shares with the other daemons (internal/config).
type Config struct {
	Listen string
	TLS    TLSFlags
	config.Resolving
	config.Diagnostics
	config.Logging
	config.Drain
	config.DnstapOutput
	Work WorkFlags
}

// TLSFlags are the PEM files of the gRPC server's TLS: its certificate
// and key, and the CA that signs the clients' certificates (mutual TLS).
type TLSFlags struct {
	Cert     string
	Key      string
	ClientCA string
}

// refusalLogInterval spaces the warnings about refused TLS handshakes.
const refusalLogInterval = 10 * time.Second

// DefaultListen is -listen's default: loopback, so that a resolverd
// started without flags is not open to the network.
const DefaultListen = "127.0.0.1:50051"

// WorkFlags are the flags of the work queue's workers: the Redis tiers
// and the cache rules as every daemon takes them, and the workers' own.
type WorkFlags struct {
	config.Tiers
	config.CacheRules
	Workers     int
	Lease       time.Duration
	MaxAttempts int
}

// Register defines resolverd's flags on fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", DefaultListen, "gRPC listen address (host:port; \":50051\" is every interface)")
	fs.StringVar(&c.TLS.Cert, "tls-cert", "", "PEM certificate (chain) of the gRPC server; with -tls-key, gRPC is served over TLS (1.2 or later)")
	fs.StringVar(&c.TLS.Key, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&c.TLS.ClientCA, "tls-client-ca", "", "PEM file of the CA certificates that sign the clients' certificates: with it, a client must show one (mutual TLS); needs -tls-cert")
	c.Resolving.Register(fs)
	c.Diagnostics.Register(fs)
	c.Logging.Register(fs)
	c.Drain.Register(fs)
	c.DnstapOutput.Register(fs)
	w := &c.Work
	w.Tiers.Register(fs)
	w.CacheRules.Register(fs)
	fs.IntVar(&w.Workers, "workers", 4, "queue workers in this process (with -queue-redis); 0: none, and no prefetch scheduling")
	fs.DurationVar(&w.Lease, "lease", queue.DefaultLease, "how long a worker holds a task before the reaper gives it to another")
	fs.IntVar(&w.MaxAttempts, "max-attempts", queue.DefaultMaxAttempts, "failed runs that send a task to the dead list")
}

// Reloadable are the flags a reload (SIGHUP) may change while resolverd
// runs; each takes effect once a part registers a reload handler for it
// (see config.Reloader.OnReload).
func (c *Config) Reloadable() []string {
	return []string{"zones", "upstream", "trusted-upstream", "forward", "recurse", "root-hints", "trust-anchor", "dnssec", "tls-cert", "tls-key",
		"min-ttl", "max-ttl", "max-negative-ttl", "stale", config.LogLevelFlag}
}

// Run is Serve without reloads or readiness notices.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return Serve(ctx, cfg, log, nil)
}

// Serve serves until ctx is done, then shuts down cleanly: the side HTTP
// servers and the gRPC server drain (health says NOT_SERVING first, calls
// in flight finish, up to -drain-timeout), then the queue's workers finish
// the tasks in hand and the scheduler gives its lease up, then the Redis
// clients and the forwarder close (see internal/lifecycle). It tells rl
// once every listener is open, and the parts that change live register
// their reload handlers with rl as they start.
func Serve(ctx context.Context, cfg Config, log *slog.Logger, rl *config.Reloader[Config]) error {
	return lifecycle.Run(ctx, "resolverd", log, cfg.DrainTimeout, func(g *lifecycle.Group) error {
		return start(ctx, g, cfg, log, rl)
	}, rl.Ready)
}

// start opens and starts resolverd's parts in g, each after what it uses.
func start(ctx context.Context, g *lifecycle.Group, cfg Config, log *slog.Logger, rl *config.Reloader[Config]) error {
	reg := procmetrics.Registry()
	if rl != nil {
		reg.MustRegister(rl.Collector())
	}
	rcfg, err := ResolverConfig(cfg)
	if err != nil {
		return err
	}
	tap, err := dnstapOf(g, cfg.DnstapOutput, reg, log) // closed after the resolver
	if err != nil {
		return fmt.Errorf("resolverd: %w", err)
	}
	rcfg.Registerer, rcfg.Logger, rcfg.Tap = reg, log, tap
	shards, err := openShards(ctx, g, cfg.Work, reg, log)
	if err != nil {
		return err
	}
	if err := useSharedState(g, cfg, shards, &rcfg, reg, log); err != nil {
		return err
	}
	res, err := resolve.Open(rcfg)
	if err != nil {
		return fmt.Errorf("resolverd: %w", err)
	}
	g.OnClose("resolver", res.Close)
	opts := rpc.ServerOptions()
	tlsCfg, cert, err := serverTLS(cfg.TLS)
	if err != nil {
		return err
	}
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(tlsconf.GRPCServer(tlsCfg, log, refusalLogInterval)))
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("resolverd: listen %s: %w", cfg.Listen, err)
	}
	if tlsCfg == nil {
		warnPlaintext(ln.Addr(), log)
	}
	ln = rawconn.Listener(ln)
	wm, err := startWork(ctx, g, cfg.Work, res, shards, reg, log)
	if err != nil {
		ln.Close()
		return err
	}
	l := &live{res: res, cert: cert, warmer: wm, log: log}
	if shards != nil {
		l.flush = flushFrom(shards)
	}
	l.register(rl)

	srv := grpc.NewServer(opts...)
	hs := rpc.New(res, rpc.WithRegisterer(reg)).Register(srv)
	g.Add("grpc server", lifecycle.Part{
		Run: func(context.Context) error {
			if err := srv.Serve(ln); err != nil {
				return fmt.Errorf("resolverd: serve: %w", err)
			}
			return nil
		},
		Drain: func(ctx context.Context) error {
			hs.Shutdown() // tell clients to move away before the listener closes
			return gracefulStop(ctx, srv)
		},
	})
	log.Info("resolverd ready", "listen", ln.Addr().String(), "tls", tlsMode(tlsCfg), "upstreams", cfg.Upstream, "forward", cfg.Forward, "zones", cfg.Zones)

	https, err := httpserve.StartAll(log,
		httpserve.Side{Addr: cfg.Metrics, WriteTimeout: 10 * time.Second, Handler: func() http.Handler {
			return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		}},
		httpserve.Side{Addr: cfg.Pprof, Handler: pprofhttp.Handler},
	)
	if err != nil {
		return fmt.Errorf("resolverd: %w", err)
	}
	for _, h := range https {
		g.Add("http "+h.Addr, lifecycle.HTTPServer(h, nil))
	}
	return nil
}

// ResolverConfig is the resolver cfg's flags describe, for resolve.Open
// and, on reload, resolve.Resolver.Reload (without a Registerer or a
// Logger: the caller sets them).
func ResolverConfig(cfg Config) (resolve.Config, error) {
	if cfg.Upstream == "" && cfg.Zones == "" && cfg.Forward == "" && !cfg.Recurse {
		return resolve.Config{}, errors.New("resolverd: nothing to answer from: set -upstream, -forward, -zones or -recurse")
	}
	routes, err := forward.ParseRoutes(cfg.Forward)
	if err != nil {
		return resolve.Config{}, fmt.Errorf("resolverd: -forward: %w", err)
	}
	validate, err := dnssecMode(cfg.Resolving)
	if err != nil {
		return resolve.Config{}, fmt.Errorf("resolverd: %w", err)
	}
	return resolve.Config{
		Upstreams: config.List(cfg.Upstream), Forward: routes,
		Trusted: config.List(cfg.Trusted), Zones: cfg.Zones,
		Recurse: cfg.Recurse, RootHints: cfg.RootHints,
		DNSSEC: validate && cfg.Recurse, TrustAnchor: cfg.TrustAnchor,
	}, nil
}

// gracefulStop stops srv once the calls in flight are answered, or at
// once when ctx ends first.
func gracefulStop(ctx context.Context, srv *grpc.Server) error {
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		srv.Stop()
		<-stopped
		return ctx.Err()
	}
}

// warnPlaintext warns when plaintext gRPC is served on an address that is
// not loopback (a wildcard address included): anyone who reaches it can
// resolve through it and read the answers.
func warnPlaintext(addr net.Addr, log *slog.Logger) {
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return
	}
	log.Warn("gRPC is served in plaintext on a non-loopback address: anyone who reaches it can resolve through it, and the traffic can be read and changed on the way; set -tls-cert and -tls-key, and -tls-client-ca so that only clients with a certificate get in",
		"listen", addr.String())
}

// tlsMode names the server's transport security for the start log.
func tlsMode(cfg *tls.Config) string {
	switch {
	case cfg == nil:
		return "off"
	case cfg.ClientAuth == tls.RequireAndVerifyClientCert:
		return "mutual"
	}
	return "on"
}

// dnssecMode reports whether r asks for DNSSEC validation (-dnssec); a
// Config built without flags (DNSSEC "") takes the flag's default.
func dnssecMode(r config.Resolving) (bool, error) {
	if r.DNSSEC == "" {
		r.DNSSEC = config.DNSSECValidate
	}
	return r.ValidateDNSSEC()
}
