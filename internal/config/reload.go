package config

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
)

// ReloadTimeout bounds one reload's handlers together.
const ReloadTimeout = time.Minute

// LogLevelFlag is the flag every daemon changes live: Main applies it
// itself, through the logger's slog.LevelVar.
const LogLevelFlag = "log-level"

// Reloader reloads a running daemon's configuration on SIGHUP: it reads
// the command line, the SHARDNS_ variables and the -config file again into
// a fresh C, keeps the running value of every changed flag that cannot
// change live (logging that it needs a restart), and hands the result to
// the handlers the daemon registered with OnReload, one at a time and in
// the order of registration; reloads never overlap. An invalid
// configuration, or a handler's error, ends the reload there and is logged
// at error level: the daemon keeps running on what it had. systemd is told
// RELOADING=1 before and READY=1 after each reload. Main makes one and
// hands it to the daemon's run; a nil *Reloader (a daemon run without
// Main, as tests do) takes no handlers and tells no one it is ready.
type Reloader[C any] struct {
	name   string
	load   func() (*C, *flag.FlagSet, error) // a fresh C and the flags that fill it
	level  func(C) string
	lv     *slog.LevelVar
	log    *slog.Logger
	notify func(state string)
	live   map[string]bool // the daemon's Reloadable flags

	ready sync.Once

	mu       sync.Mutex // serializes reloads; guards the fields below
	handlers []handler[C]
	applied  map[string]bool   // live flags some handler applies
	current  map[string]string // the running flags' values

	lastTime atomic.Int64 // unix nanoseconds of the last load, first included
	lastOK   atomic.Bool
}

// handler is a registered reload handler.
type handler[C any] struct {
	apply func(ctx context.Context, next C) error
}

func newReloader[C any](name string, fs *flag.FlagSet, live []string, load func() (*C, *flag.FlagSet, error), level func(C) string, lv *slog.LevelVar, log *slog.Logger, notify func(string)) *Reloader[C] {
	r := &Reloader[C]{
		name: name, load: load, level: level, lv: lv, log: log, notify: notify,
		live: map[string]bool{}, applied: map[string]bool{LogLevelFlag: true},
		current: flagValues(fs),
	}
	for _, f := range live {
		r.live[f] = true
	}
	r.live[LogLevelFlag] = true
	r.lastTime.Store(time.Now().UnixNano())
	r.lastOK.Store(true)
	return r
}

// OnReload registers apply, which takes the reloaded Config, and the
// flags it applies live (each must be one of the daemon's Reloadable
// ones, else OnReload panics: that is a mistake in the daemon's code).
// A changed flag that is Reloadable but that no handler applies is
// logged as needing a restart and kept, as any other.
//
// apply runs on every reload, whatever changed (a zone file may have
// changed on disk under the same flag), with a context that ends after
// ReloadTimeout or when the daemon stops. It must build everything new
// first (read files, load certificates, open sockets) and swap it in last,
// atomically, only once all of it succeeded: an error it returns must
// leave its part as it was. The reload stops at the first error, so the
// handlers registered after a failing one do not run; those before it
// have applied their part, and the next reload hands them the whole
// configuration again. A handler must not call OnReload.
func (r *Reloader[C]) OnReload(apply func(ctx context.Context, next C) error, flags ...string) {
	if r == nil {
		return
	}
	for _, f := range flags {
		if !r.live[f] {
			panic(fmt.Sprintf("config: %s: a reload handler applies -%s, which is not one of the daemon's Reloadable flags", r.name, f))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handlers = append(r.handlers, handler[C]{apply: apply})
	for _, f := range flags {
		r.applied[f] = true
	}
}

// Ready tells systemd the daemon serves (READY=1), once; the daemon calls
// it when all its listeners are open. Without $NOTIFY_SOCKET it does
// nothing.
func (r *Reloader[C]) Ready() {
	if r == nil {
		return
	}
	r.ready.Do(func() { r.notify("READY=1") })
}

// Collector is the pair of gauges of the last configuration load, as
// Prometheus exports its own: shardns_config_last_reload_successful (1 or
// 0) and shardns_config_last_reload_timestamp_seconds. The load at start
// counts as a successful one. The daemon registers it in its registry.
func (r *Reloader[C]) Collector() prometheus.Collector {
	return reloadCollector{
		ok: prometheus.NewDesc("shardns_config_last_reload_successful",
			"Whether the last configuration load (at start, or on SIGHUP) succeeded: 1 yes, 0 no.", nil, nil),
		at: prometheus.NewDesc("shardns_config_last_reload_timestamp_seconds",
			"When the configuration was last loaded (at start, or on SIGHUP), successfully or not, in seconds since the epoch.", nil, nil),
		value: func() (bool, time.Time) { return r.lastOK.Load(), time.Unix(0, r.lastTime.Load()) },
	}
}

// reloadCollector collects a Reloader's gauges.
type reloadCollector struct {
	ok, at *prometheus.Desc
	value  func() (bool, time.Time)
}

// Describe sends the two gauges' descriptions.
func (c reloadCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.ok; ch <- c.at }

// Collect sends the two gauges.
func (c reloadCollector) Collect(ch chan<- prometheus.Metric) {
	ok, at := c.value()
	v := 0.0
	if ok {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(c.ok, prometheus.GaugeValue, v)
	ch <- prometheus.MustNewConstMetric(c.at, prometheus.GaugeValue, float64(at.UnixNano())/1e9)
}

// reload reloads the configuration once (see Reloader) and returns why it
// failed, which it has logged.
func (r *Reloader[C]) reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notify("RELOADING=1\n" + strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n"))
	defer r.notify("READY=1")
	r.log.Info("reloading the configuration")
	err := r.apply(ctx)
	r.lastTime.Store(time.Now().UnixNano())
	r.lastOK.Store(err == nil)
	if err != nil {
		r.log.Error("reload failed: the running configuration is kept", "err", err)
	}
	return err
}

// apply is reload's work, under r.mu.
func (r *Reloader[C]) apply(ctx context.Context) error {
	next, fs, err := r.load()
	if err != nil {
		return err
	}
	values := flagValues(fs)
	var changed []any
	for _, name := range sortedKeys(values) {
		old, now := r.current[name], values[name]
		if old == now {
			continue
		}
		if r.live[name] && r.applied[name] {
			changed = append(changed, slog.Group(name, "old", shown(name, old), "new", shown(name, now)))
			continue
		}
		r.log.Warn("a changed setting needs a restart: the running value is kept", "flag", name, "old", shown(name, old), "new", shown(name, now))
		if err := fs.Set(name, old); err != nil {
			return fmt.Errorf("config: reload: keep -%s %q: %w", name, shown(name, old), err)
		}
		values[name] = old
	}
	lv, err := ParseLevel(r.level(*next))
	if err != nil {
		return err
	}
	hctx, cancel := context.WithTimeout(ctx, ReloadTimeout)
	defer cancel()
	for _, h := range r.handlers {
		if err := h.apply(hctx, *next); err != nil {
			return fmt.Errorf("config: reload: %w", err)
		}
	}
	r.lv.Set(lv)
	r.current = values
	if len(changed) == 0 {
		r.log.Info("configuration reloaded", "changed", "nothing")
	} else {
		r.log.Info("configuration reloaded", slog.Group("changed", changed...))
	}
	return nil
}

// flagValues are fs's flags' values as text, the -config and -version
// flags left out (they are read once, at start).
func flagValues(fs *flag.FlagSet) map[string]string {
	out := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != ConfigFlag && f.Name != VersionFlag {
			out[f.Name] = f.Value.String()
		}
	})
	return out
}

// shown is a flag's value as a log may show it: a secret's is hidden.
func shown(name, value string) string {
	secret := name == "token" || strings.Contains(name, "password") && !strings.HasSuffix(name, "-file")
	if secret && value != "" {
		return "(hidden)"
	}
	return value
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// systemdNotifier sends states to systemd's $NOTIFY_SOCKET (sd_notify),
// and does nothing without one; a failed send is logged.
func systemdNotifier(log *slog.Logger) func(state string) {
	return func(state string) {
		if _, err := daemon.SdNotify(false, state); err != nil {
			log.Warn("systemd notify failed", "state", strings.ReplaceAll(state, "\n", " "), "err", err)
		}
	}
}
