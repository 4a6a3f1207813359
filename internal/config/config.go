// Package config reads a daemon's flags, each also settable from the
// environment as SHARDNS_<FLAG> (upper case, '-' → '_') and from the
// fleet's YAML config file (-config, see Schema). A flag given on the
// command line wins over the environment, which wins over the file. Main
// runs a daemon with them, and reloads them on SIGHUP (see Reloader).
package config

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// EnvName is the environment variable that sets flag name.
func EnvName(name string) string {
	return "SHARDNS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args into fs, then sets every flag not given in args from its
// environment variable, read with getenv. -h lists every flag with its
// variable.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	fs.Usage = func() { usage(fs) }
	if err := ParseCommand(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// ParseCommand is Parse for a subcommand that takes arguments after its
// flags (fs.Args) and prints its own fs.Usage.
func ParseCommand(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	return applyEnv(fs, getenv)
}

// applyEnv sets every flag of fs not given on the command line from its
// SHARDNS_ variable, when that is set and not empty. The command-line-only
// flags (-version) have none.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil || commandLineOnly(f.Name) {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("config: %s=%q: %w", EnvName(f.Name), v, e)
			}
		}
	})
	return err
}

func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage of %s:\n", fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		fmt.Fprintf(w, "  -%s%s\n    \t%s", f.Name, name, strings.ReplaceAll(help, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		if commandLineOnly(f.Name) {
			fmt.Fprint(w, " [command line only]\n")
			return
		}
		fmt.Fprintf(w, " [$%s]\n", EnvName(f.Name))
	})
}

// List splits a comma-separated flag value, dropping empty items.
func List(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Logger builds the daemon's logger: format is "text" or "json", level one
// of debug, info, warn, error.
func Logger(w io.Writer, format, level string) (*slog.Logger, error) {
	lv, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return LevelLogger(w, format, lv)
}

// ParseLevel reads a -log-level value: debug, info, warn or error.
func ParseLevel(level string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return 0, fmt.Errorf("config: log level %q: %w", level, err)
	}
	return lv, nil
}

// LevelLogger is Logger with its level read from lv at each record, so that
// a *slog.LevelVar changes it while the daemon runs.
func LevelLogger(w io.Writer, format string, lv slog.Leveler) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("config: log format %q: want text or json", format)
}
