// Package service assembles resolverd from its flags: local zones, the
// upstream forwarder, and the gRPC server with health and reflection.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/resolve"
	"github.com/shardns/shardns/resolverd/rpc"
	"github.com/shardns/shardns/resolverd/zones"
)

// Config is resolverd's flags.
type Config struct {
	Listen    string
	Upstream  string
	Zones     string
	Metrics   string
	LogFormat string
	LogLevel  string
}

// Register defines resolverd's flags on fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", ":50051", "gRPC listen address")
	fs.StringVar(&c.Upstream, "upstream", "", "comma list of upstreams: host:port (UDP, TCP on truncation), tcp://host:port, tls://host:port[#name]")
	fs.StringVar(&c.Zones, "zones", "", "folder of RFC 1035 zone files (*.zone, *.db) answered locally")
	fs.StringVar(&c.Metrics, "metrics", "", "serve Prometheus /metrics on this address")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var auth resolve.Authority
	if cfg.Zones != "" {
		a, err := zones.Load(cfg.Zones)
		if err != nil {
			return fmt.Errorf("resolverd: %w", err)
		}
		auth = a
		log.Info("zones loaded", "zones", a.Zones())
	}
	var fwd resolve.Forwarder
	if ups := config.List(cfg.Upstream); len(ups) > 0 {
		f, err := forward.New(forward.Config{Upstreams: ups, Logger: log})
		if err != nil {
			return fmt.Errorf("resolverd: %w", err)
		}
		defer f.Close()
		reg.MustRegister(f.Collector())
		fwd = f
	}
	res, err := resolve.New(auth, fwd)
	if err != nil {
		return fmt.Errorf("resolverd: %w (set -upstream or -zones)", err)
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("resolverd: listen %s: %w", cfg.Listen, err)
	}
	srv := grpc.NewServer()
	hs := rpc.New(res, rpc.WithRegisterer(reg)).Register(srv)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("resolverd ready", "listen", ln.Addr().String(), "upstreams", cfg.Upstream, "zones", cfg.Zones)

	var metrics *http.Server
	if cfg.Metrics != "" {
		mln, err := net.Listen("tcp", cfg.Metrics)
		if err != nil {
			srv.Stop()
			return fmt.Errorf("resolverd: listen metrics %s: %w", cfg.Metrics, err)
		}
		metrics = &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go metrics.Serve(mln)
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
	if metrics != nil {
		return errors.Join(metrics.Close())
	}
	return nil
}

// LogSettings are the -log-format and -log-level values.
func (c *Config) LogSettings() (format, level string) { return c.LogFormat, c.LogLevel }
