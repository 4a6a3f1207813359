package config

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shardns/shardns/internal/buildinfo"
	"github.com/shardns/shardns/internal/cache"
)

// Daemon is a daemon's flags: it registers them, names its log settings
// and the flags that may change while it runs.
type Daemon interface {
	Register(fs *flag.FlagSet)
	LogSettings() (format, level string)
	// Reloadable names the flags a reload may change live; a change to
	// any other is logged as needing a restart and not applied (see
	// Reloader).
	Reloadable() []string
}

// The flags Main adds to every daemon's.
const (
	// ConfigFlag names the fleet's YAML config file ($SHARDNS_CONFIG).
	ConfigFlag = "config"
	// VersionFlag prints the build and exits; command line only.
	VersionFlag = "version"
)

// commandLineOnly reports whether a flag has no SHARDNS_ variable.
func commandLineOnly(name string) bool { return name == VersionFlag }

// FlagSet returns daemon name's flag set as Main reads it: d's flags,
// -config and -version. Errors and -h go to out.
func FlagSet(name string, d Daemon, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	d.Register(fs)
	fs.String(ConfigFlag, "", "YAML `file` of settings for the fleet: keys are flag names; top-level keys apply to every daemon that has the flag, a section named after the daemon (dnsd:, resolverd:, cacheapi:) overrides them; the command line and SHARDNS_ variables win over it; re-read on SIGHUP")
	fs.Bool(VersionFlag, false, "print the version and build of this binary and exit")
	fs.Usage = func() { usage(fs) }
	return fs
}

// Load fills fs (made by FlagSet for daemon) from args, then the SHARDNS_
// variables read with getenv, then the file -config names, checked
// against files; each source sets only the flags the ones before it left
// unset. files may be nil when fs has no -config.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string, files *Schema, daemon string) error {
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	return loadRest(fs, getenv, files, daemon)
}

// parseArgs reads the command line into fs; the daemons take no
// positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// loadRest is Load after the command line: the environment, then the file.
func loadRest(fs *flag.FlagSet, getenv func(string) string, files *Schema, daemon string) error {
	if err := applyEnv(fs, getenv); err != nil {
		return err
	}
	if files == nil {
		if cf := fs.Lookup(ConfigFlag); cf != nil && cf.Value.String() != "" {
			return errors.New("config: -config given, but this program reads no config file")
		}
		return nil
	}
	return files.applyFile(fs, daemon)
}

// Main is the body of every shardns daemon's main: read the flags (from
// the command line, the SHARDNS_ variables and the -config file, checked
// against files), build the logger (go-redis's messages included), run
// until SIGINT or SIGTERM, and return the exit code: 0 after a clean stop
// (or -h, -version), 1 when run failed, 2 for bad flags. The first signal
// ends run's context (run then drains, see internal/lifecycle) and tells
// systemd STOPPING=1; a second one, while it does, kills the process as Go
// does by default. SIGHUP reloads the configuration (see Reloader), never
// while run is stopping.
func Main[C any, P interface {
	*C
	Daemon
}](name string, args []string, getenv func(string) string, stderr io.Writer, files *Schema, run func(ctx context.Context, cfg C, log *slog.Logger, rl *Reloader[C]) error) int {
	// SIGHUP is caught from the start: Go's default would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var cfg C
	fs := FlagSet(name, P(&cfg), stderr)
	if err := parseArgs(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	if fs.Lookup(VersionFlag).Value.String() == "true" {
		fmt.Fprintln(stderr, buildinfo.Read().String(name))
		return 0
	}
	if err := loadRest(fs, getenv, files, name); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	format, level := P(&cfg).LogSettings()
	lv := new(slog.LevelVar)
	l, err := ParseLevel(level)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	lv.Set(l)
	log, err := LevelLogger(stderr, format, lv)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	cache.UseLogger(log)

	notify := systemdNotifier(log)
	load := func() (*C, *flag.FlagSet, error) {
		next := new(C)
		fs := FlagSet(name, P(next), io.Discard)
		err := Load(fs, args, getenv, files, name)
		return next, fs, err
	}
	rl := newReloader(name, fs, P(&cfg).Reloadable(), load, func(c C) string { _, l := P(&c).LogSettings(); return l }, lv, log, notify)

	sigCtx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	// The reload loop ends first, a reload in flight included (its
	// handlers' context ends with the signal), and only then run's
	// context: handlers never run while the daemon stops.
	reloads := make(chan struct{})
	go func() {
		defer close(reloads)
		for {
			select {
			case <-hup:
				_ = rl.reload(sigCtx)
			case <-sigCtx.Done():
				return
			}
		}
	}()
	context.AfterFunc(sigCtx, func() {
		stopSignals() // a second signal kills the process
		notify("STOPPING=1")
		<-reloads
		stopRun()
	})
	err = run(runCtx, cfg, log, rl)
	stopSignals()
	<-reloads
	if err != nil {
		log.Error(name+" stopped", "err", err)
		return 1
	}
	return 0
}
