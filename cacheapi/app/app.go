// Package app assembles cacheapi from its flags.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/shardns/shardns/cacheapi/api"
	"github.com/shardns/shardns/cacheapi/stats"
	"github.com/shardns/shardns/internal/frontend"
	"github.com/shardns/shardns/internal/procmetrics"
)

// Config is cacheapi's flags.
type Config struct {
	Listen    string
	Frontend  frontend.Flags
	Token     string
	HTTPRate  float64
	LogFormat string
	LogLevel  string
}

// Register defines cacheapi's flags on fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", ":8080", "HTTP listen address")
	c.Frontend.Register(fs)
	fs.StringVar(&c.Token, "token", "", "bearer token that mutating calls (DELETE /cache/...) need; empty: they are taken only from loopback clients")
	fs.Float64Var(&c.HTTPRate, "http-rate", 0, "requests per second each client (IPv4 address, IPv6 /64) may make to /lookup and /dns-query; 0 turns the limit off")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.HTTPRate < 0 {
		return fmt.Errorf("cacheapi: -http-rate %v is negative", cfg.HTTPRate)
	}
	reg := procmetrics.Registry()
	fe, err := frontend.Build(cfg.Frontend, nil, reg, log)
	if err != nil {
		return fmt.Errorf("cacheapi: %w", err)
	}
	defer fe.Close()
	statsCtx, stopStats := context.WithCancel(ctx)
	waitStats := fe.PublishStats(statsCtx, "cacheapi", reg, log)
	defer func() { stopStats(); waitStats() }()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cacheapi: listen %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler: api.New(api.Config{
			Chain: fe.Chain, Gatherer: reg, Logger: log,
			Cache: fe, Ready: fe, Token: cfg.Token, Rate: cfg.HTTPRate,
			Stats: stats.Of(fe.StatsSource()), Jobs: api.JobsOf(fe.Queue),
		}),
		// ReadTimeout leaves room for a POST /jobs upload of a large CSV.
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 60 * time.Second, WriteTimeout: 10 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("cacheapi ready", "listen", ln.Addr().String())
	select {
	case <-ctx.Done():
	case err := <-done:
		return fmt.Errorf("cacheapi: serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// LogSettings are the -log-format and -log-level values.
func (c *Config) LogSettings() (format, level string) { return c.LogFormat, c.LogLevel }
