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
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/httpserve"
	"github.com/shardns/shardns/internal/pprofhttp"
	"github.com/shardns/shardns/internal/procmetrics"
	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/rawconn"
	"github.com/shardns/shardns/internal/redisopt"
	"github.com/shardns/shardns/internal/tlsconf"
	"github.com/shardns/shardns/resolverd/resolve"
	"github.com/shardns/shardns/resolverd/rpc"
)

// Config is resolverd's flags.
type Config struct {
	Listen    string
	TLS       TLSFlags
	Upstream  string
	Trusted   string
	Zones     string
	Metrics   string
	Pprof     string
	LogFormat string
	LogLevel  string
	Work      WorkFlags
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

// WorkFlags are the flags of the work queue's workers.
type WorkFlags struct {
	Redis        string
	RedisCluster bool
	RedisTimeout time.Duration
	QueueRedis   string
	Queue        string
	Workers      int
	Lease        time.Duration
	MaxAttempts  int
	MinTTL       time.Duration
	MaxTTL       time.Duration
	MaxNegTTL    time.Duration
	Stale        time.Duration
	PrefetchHits int
	// RedisAuth is who the workers' cache and queue clients log in as,
	// and whether over TLS.
	RedisAuth redisopt.Flags
}

// Register defines resolverd's flags on fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", DefaultListen, "gRPC listen address (host:port; \":50051\" is every interface)")
	fs.StringVar(&c.TLS.Cert, "tls-cert", "", "PEM certificate (chain) of the gRPC server; with -tls-key, gRPC is served over TLS (1.2 or later)")
	fs.StringVar(&c.TLS.Key, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&c.TLS.ClientCA, "tls-client-ca", "", "PEM file of the CA certificates that sign the clients' certificates: with it, a client must show one (mutual TLS); needs -tls-cert")
	fs.StringVar(&c.Upstream, "upstream", "", "comma list of upstreams: host:port (UDP, TCP on truncation), tcp://host:port, tls://host:port[#name]")
	fs.StringVar(&c.Trusted, "trusted-upstream", "", "comma list of upstreams, written as in -upstream, whose AD bit is passed on (tls:// upstreams always are); AD from any other is cleared")
	fs.StringVar(&c.Zones, "zones", "", "folder of RFC 1035 zone files (*.zone, *.db) answered locally")
	fs.StringVar(&c.Metrics, "metrics", "", "serve Prometheus /metrics on this address")
	fs.StringVar(&c.Pprof, "pprof", "", "serve Go's profiler (net/http/pprof, /debug/pprof/) on this address; keep it on loopback")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	w := &c.Work
	fs.StringVar(&w.Redis, "redis", "", "comma list of Redis cache shards the workers write answers to (as dnsd's -redis)")
	fs.BoolVar(&w.RedisCluster, "redis-cluster", false, "treat -redis as the seed nodes of a Redis Cluster")
	fs.DurationVar(&w.RedisTimeout, "redis-timeout", 500*time.Millisecond, "budget for one cache write by a worker")
	fs.StringVar(&w.QueueRedis, "queue-redis", "", "the work queue's Redis (host:port; never a cache shard); with it, -workers take warm and refresh tasks")
	fs.StringVar(&w.Queue, "queue", queue.DefaultName, "the work queue's name")
	fs.IntVar(&w.Workers, "workers", 4, "queue workers in this process (with -queue-redis); 0: none, and no prefetch scheduling")
	fs.DurationVar(&w.Lease, "lease", queue.DefaultLease, "how long a worker holds a task before the reaper gives it to another")
	fs.IntVar(&w.MaxAttempts, "max-attempts", queue.DefaultMaxAttempts, "failed runs that send a task to the dead list")
	fs.DurationVar(&w.MinTTL, "min-ttl", 0, "lowest TTL the workers store (as dnsd's -min-ttl)")
	fs.DurationVar(&w.MaxTTL, "max-ttl", 86400*time.Second, "highest TTL the workers store (as dnsd's -max-ttl)")
	fs.DurationVar(&w.MaxNegTTL, "max-negative-ttl", dnsmsg.DefaultMaxNegativeTTL, "highest TTL of a negative answer (NXDOMAIN, NODATA) the workers store (as dnsd's -max-negative-ttl)")
	fs.DurationVar(&w.Stale, "stale", 24*time.Hour, "serve-stale window of the entries the workers store (as dnsd's -stale)")
	fs.IntVar(&w.PrefetchHits, "prefetch-hits", 2, "hits across the fleet that make an entry popular enough to be refreshed before it expires")
	w.RedisAuth.Register(fs)
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	reg := procmetrics.Registry()
	if cfg.Upstream == "" && cfg.Zones == "" {
		return errors.New("resolverd: nothing to answer from: set -upstream or -zones")
	}
	res, err := resolve.Open(resolve.Config{
		Upstreams: config.List(cfg.Upstream), Trusted: config.List(cfg.Trusted), Zones: cfg.Zones,
		Registerer: reg, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("resolverd: %w", err)
	}
	defer res.Close()
	opts := rpc.ServerOptions()
	tlsCfg, err := tlsconf.Server(
		tlsconf.File{Flag: "tls-cert", Path: cfg.TLS.Cert},
		tlsconf.File{Flag: "tls-key", Path: cfg.TLS.Key},
		tlsconf.File{Flag: "tls-client-ca", Path: cfg.TLS.ClientCA})
	if err != nil {
		return fmt.Errorf("resolverd: %w", err)
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
	stopWork, err := startWork(ctx, cfg.Work, res, reg, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopWork()

	srv := grpc.NewServer(opts...)
	hs := rpc.New(res, rpc.WithRegisterer(reg)).Register(srv)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("resolverd ready", "listen", ln.Addr().String(), "tls", tlsMode(tlsCfg), "upstreams", cfg.Upstream, "zones", cfg.Zones)

	https, err := httpserve.StartAll(log,
		httpserve.Side{Addr: cfg.Metrics, WriteTimeout: 10 * time.Second, Handler: func() http.Handler {
			return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		}},
		httpserve.Side{Addr: cfg.Pprof, Handler: pprofhttp.Handler},
	)
	if err != nil {
		srv.Stop()
		return fmt.Errorf("resolverd: %w", err)
	}

	select {
	case <-ctx.Done():
	case err := <-done:
		return fmt.Errorf("resolverd: serve: %w", err)
	}
	log.Info("resolverd shutting down")
	hs.Shutdown() // tell clients to move away before the listener closes
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		srv.Stop()
	}
	var errs []error
	for _, h := range https {
		errs = append(errs, h.Close())
	}
	return errors.Join(errs...)
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

// LogSettings are the -log-format and -log-level values.
func (c *Config) LogSettings() (format, level string) { return c.LogFormat, c.LogLevel }
