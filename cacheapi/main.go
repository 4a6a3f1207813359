// Command cacheapi is shardns's REST API: lookups in dns-json through the
// same cache tiers and resolver as dnsd, the cache itself, jobs for the work
// queue, health and metrics. `cacheapi warm FILE` submits a CSV of names as
// a job to a running cacheapi and shows its progress.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/shardns/shardns/cacheapi/app"
	"github.com/shardns/shardns/cacheapi/warmcli"
	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/daemons"
	"github.com/shardns/shardns/internal/gctune"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "warm" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := warmcli.Main(ctx, os.Args[2:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	gctune.Start(os.Getenv)
	os.Exit(config.Main("cacheapi", os.Args[1:], os.Getenv, os.Stderr, daemons.Schema(), app.Serve))
}
