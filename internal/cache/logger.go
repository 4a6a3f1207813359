package cache

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// slogPrinter routes go-redis's own messages (dial failures, shards marked
// up or down) into the daemon's structured log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(ctx context.Context, format string, v ...any) {
	p.log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// UseLogger sends go-redis's messages to log. go-redis keeps one logger per
// process, so a daemon calls this once, from main.
func UseLogger(log *slog.Logger) { redis.SetLogger(slogPrinter{log: log}) }
