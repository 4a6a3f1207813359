package config

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/shardns/shardns/internal/cache"
)

// Daemon is a daemon's flags: it registers them and names its log settings.
type Daemon interface {
	Register(fs *flag.FlagSet)
	LogSettings() (format, level string)
}

// Main is the body of every shardns main: read the flags (and their
// SHARDNS_ variables), build the logger (go-redis's messages included), run
// until SIGINT or SIGTERM, and return the exit code: 0 after a clean stop,
// 1 when run failed, 2 for bad flags. The first signal ends run's context
// (run then drains, see internal/lifecycle); a second one, while it does,
// kills the process as Go does by default.
func Main(name string, args []string, getenv func(string) string, stderr io.Writer, d Daemon, run func(context.Context, *slog.Logger) error) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	d.Register(fs)
	if err := Parse(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	format, level := d.LogSettings()
	log, err := Logger(stderr, format, level)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	cache.UseLogger(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	if err := run(ctx, log); err != nil {
		log.Error(name+" stopped", "err", err)
		return 1
	}
	return 0
}
