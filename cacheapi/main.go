// Command cacheapi is shardns's REST API: lookups in dns-json through the
// same cache tiers and resolver as dnsd, health and metrics.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/shardns/shardns/cacheapi/app"
	"github.com/shardns/shardns/internal/config"
)

func main() {
	var cfg app.Config
	os.Exit(config.Main("cacheapi", os.Args[1:], os.Getenv, os.Stderr, &cfg, func(ctx context.Context, log *slog.Logger) error {
		return app.Run(ctx, cfg, log)
	}))
}
