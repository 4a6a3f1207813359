// Command cacheapi is shardns's REST API: lookups in dns-json through the
// same cache tiers and resolver as dnsd, health and metrics.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shardns/shardns/cacheapi/app"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/config"
)

func main() {
	var cfg app.Config
	fs := flag.NewFlagSet("cacheapi", flag.ContinueOnError)
	cfg.Register(fs)
	if err := config.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		if err == flag.ErrHelp {
			return
		}
		fmt.Fprintln(os.Stderr, "cacheapi:", err)
		os.Exit(2)
	}
	log, err := config.Logger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cacheapi:", err)
		os.Exit(2)
	}
	cache.UseLogger(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error("cacheapi stopped", "err", err)
		os.Exit(1)
	}
}
