// Command resolverd is shardns's resolver service: gRPC on -listen
// (shardns.resolver.v1.Resolver and coredns.dns.DnsService), answering from
// local zone files and forwarding the rest to -upstream.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/resolverd/service"
)

func main() {
	var cfg service.Config
	fs := flag.NewFlagSet("resolverd", flag.ContinueOnError)
	cfg.Register(fs)
	if err := config.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		if err == flag.ErrHelp {
			return
		}
		fmt.Fprintln(os.Stderr, "resolverd:", err)
		os.Exit(2)
	}
	log, err := config.Logger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "resolverd:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := service.Run(ctx, cfg, log); err != nil {
		log.Error("resolverd stopped", "err", err)
		os.Exit(1)
	}
}
