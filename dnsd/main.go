// Command dnsd is shardns's DNS daemon: UDP and TCP on -listen, answers from
// the shared cache, misses through resolverd. With no -resolver and no
// -redis it runs everything in one process: `go run ./dnsd`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shardns/shardns/dnsd/app"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/config"
)

func main() {
	var cfg app.Config
	fs := flag.NewFlagSet("dnsd", flag.ContinueOnError)
	cfg.Register(fs)
	if err := config.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		if err == flag.ErrHelp {
			return
		}
		fmt.Fprintln(os.Stderr, "dnsd:", err)
		os.Exit(2)
	}
	log, err := config.Logger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dnsd:", err)
		os.Exit(2)
	}
	cache.UseLogger(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error("dnsd stopped", "err", err)
		os.Exit(1)
	}
}
