package config

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shardns/shardns/internal/testutil/logbuf"
)

// testDaemon has a live flag (-name), one that is Reloadable but that no
// handler applies (-greeting) and one that needs a restart (-listen).
type testDaemon struct{ name, greeting, listen, format, level string }

func (d *testDaemon) Register(fs *flag.FlagSet) {
	fs.StringVar(&d.name, "name", "x", "a name")
	fs.StringVar(&d.greeting, "greeting", "hello", "a greeting")
	fs.StringVar(&d.listen, "listen", ":1", "an address")
	fs.StringVar(&d.format, "log-format", "text", "log format")
	fs.StringVar(&d.level, "log-level", "info", "log level")
}

func (d *testDaemon) LogSettings() (string, string) { return d.format, d.level }
func (d *testDaemon) Reloadable() []string          { return []string{"name", "greeting", LogLevelFlag} }

func testdSchema() *Schema { return NewSchema(map[string]Daemon{"testd": &testDaemon{}}) }

func noEnv(string) string { return "" }

// noNotify keeps Main from telling the service manager running the tests
// (if any) that this process is ready or stopping.
func noNotify(t *testing.T) { t.Setenv("NOTIFY_SOCKET", "") }

func TestMainExitCodes(t *testing.T) {
	noNotify(t)
	env := func(k string) string {
		if k == "SHARDNS_NAME" {
			return "from-env"
		}
		return ""
	}
	var got testDaemon
	ok := func(_ context.Context, cfg testDaemon, _ *slog.Logger, _ *Reloader[testDaemon]) error {
		got = cfg
		return nil
	}
	fail := func(context.Context, testDaemon, *slog.Logger, *Reloader[testDaemon]) error {
		return errors.New("boom")
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("testd:\n  name: a\n  nmae: b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		run  func(context.Context, testDaemon, *slog.Logger, *Reloader[testDaemon]) error
		code int
		out  string
	}{
		{[]string{"-h"}, ok, 0, "[$SHARDNS_NAME]"},
		{[]string{"-version"}, ok, 0, "testd "},
		{[]string{"-version", "-config", bad}, ok, 0, " revision "},
		{[]string{"-bogus"}, ok, 2, "flag provided but not defined"},
		{[]string{"-log-format", "xml"}, ok, 2, "log format"},
		{[]string{"-log-level", "loud"}, ok, 2, "log level"},
		{[]string{"-config", bad}, ok, 2, "bad.yaml:3: testd.nmae: unknown key"},
		{nil, fail, 1, "boom"},
		{nil, ok, 0, ""},
	} {
		var stderr bytes.Buffer
		got = testDaemon{}
		if code := Main("testd", tc.args, env, &stderr, testdSchema(), tc.run); code != tc.code || !strings.Contains(stderr.String(), tc.out) {
			t.Errorf("%v: exit %d, want %d; stderr %q, want it to contain %q", tc.args, code, tc.code, stderr.String(), tc.out)
		}
		if tc.code == 0 && len(tc.args) == 0 && got.name != "from-env" {
			t.Errorf("flag from the environment: %q", got.name)
		}
	}
}

// SIGTERM ends run's context, and run's clean return is exit code 0.
func TestMainStopsOnSIGTERM(t *testing.T) {
	noNotify(t)
	var stderr bytes.Buffer
	run := func(ctx context.Context, _ testDaemon, _ *slog.Logger, _ *Reloader[testDaemon]) error {
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("SIGTERM did not end the context")
		}
	}
	if code := Main("testd", nil, noEnv, &stderr, testdSchema(), run); code != 0 {
		t.Errorf("exit %d after SIGTERM; stderr %q", code, stderr.String())
	}
}

// notifySocket listens where $NOTIFY_SOCKET points for the test, as
// systemd does, and returns the states sent there.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	states := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			states <- string(buf[:n])
		}
	}()
	return states
}

// next returns the next state sent, failing the test after 10 s.
func next(t *testing.T, states <-chan string) string {
	t.Helper()
	select {
	case s := <-states:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no state sent to $NOTIFY_SOCKET")
		return ""
	}
}

// Main tells systemd READY=1 when the daemon says it serves, RELOADING=1
// (with the monotonic time) then READY=1 around a SIGHUP's reload, and
// STOPPING=1 on SIGTERM; the reload reaches the daemon's handler.
func TestMainNotifiesSystemd(t *testing.T) {
	states := notifySocket(t)
	path := filepath.Join(t.TempDir(), "shardns.yaml")
	if err := os.WriteFile(path, []byte("name: one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr logbuf.Buffer
	reloaded := make(chan string, 1)
	run := func(ctx context.Context, cfg testDaemon, _ *slog.Logger, rl *Reloader[testDaemon]) error {
		if cfg.name != "one" {
			t.Errorf("name %q from the file", cfg.name)
		}
		rl.OnReload(func(_ context.Context, next testDaemon) error { reloaded <- next.name; return nil }, "name")
		rl.Ready()
		if s := next(t, states); s != "READY=1" {
			t.Errorf("first state %q, want READY=1", s)
		}
		if err := os.WriteFile(path, []byte("name: two\n"), 0o644); err != nil {
			return err
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			return err
		}
		if s := next(t, states); !strings.HasPrefix(s, "RELOADING=1\nMONOTONIC_USEC=") {
			t.Errorf("state on SIGHUP %q, want RELOADING=1 and MONOTONIC_USEC", s)
		}
		if s := next(t, states); s != "READY=1" {
			t.Errorf("state after the reload %q, want READY=1", s)
		}
		select {
		case name := <-reloaded:
			if name != "two" {
				t.Errorf("reloaded name %q, want two", name)
			}
		default:
			t.Error("READY=1 came before the handler ran")
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}
	if code := Main("testd", []string{"-config", path}, noEnv, &stderr, testdSchema(), run); code != 0 {
		t.Errorf("exit %d; stderr %s", code, stderr.String())
	}
	if s := next(t, states); s != "STOPPING=1" {
		t.Errorf("state on SIGTERM %q, want STOPPING=1", s)
	}
}

// reloadFixture is a Reloader built as Main builds it, over a config file
// the test rewrites.
type reloadFixture struct {
	path string
	rl   *Reloader[testDaemon]
	lv   *slog.LevelVar
	logs *logbuf.Buffer
}

func newReloadFixture(t *testing.T, text string, args ...string) *reloadFixture {
	t.Helper()
	f := &reloadFixture{path: filepath.Join(t.TempDir(), "shardns.yaml"), lv: new(slog.LevelVar), logs: &logbuf.Buffer{}}
	f.write(t, text)
	args = append([]string{"-config", f.path}, args...)
	schema := testdSchema()
	load := func() (*testDaemon, *flag.FlagSet, error) {
		d := new(testDaemon)
		fs := FlagSet("testd", d, io.Discard)
		err := Load(fs, args, noEnv, schema, "testd")
		return d, fs, err
	}
	cur, fs, err := load()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.rl = newReloader("testd", fs, cur.Reloadable(), load, func(d testDaemon) string { return d.level }, f.lv, log, func(string) {})
	return f
}

func (f *reloadFixture) write(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile(f.path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// gauges returns shardns_config_last_reload_successful and its timestamp.
func (f *reloadFixture) gauges(t *testing.T) (float64, float64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.rl.Collector())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fam := range fams {
		got[fam.GetName()] = fam.GetMetric()[0].GetGauge().GetValue()
	}
	return got["shardns_config_last_reload_successful"], got["shardns_config_last_reload_timestamp_seconds"]
}

// A live flag reaches the handler; a changed flag that needs a restart
// (-listen), or that no handler applies (-greeting), is logged with its
// old and new values and keeps its old value; the log level changes.
func TestReloadLiveAndRestart(t *testing.T) {
	f := newReloadFixture(t, "testd:\n  name: a\n  listen: 127.0.0.1:1\n")
	ok, at := f.gauges(t)
	if ok != 1 || at < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("after start: successful %v at %v", ok, at)
	}
	var got []testDaemon
	f.rl.OnReload(func(_ context.Context, next testDaemon) error { got = append(got, next); return nil }, "name")
	f.write(t, "log-level: debug\ntestd:\n  name: b\n  listen: 127.0.0.1:2\n  greeting: hi\n")
	if err := f.rl.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].name != "b" || got[0].listen != "127.0.0.1:1" || got[0].greeting != "hello" || got[0].level != "debug" {
		t.Fatalf("handler got %+v", got)
	}
	logs := f.logs.String()
	for _, want := range []string{
		`msg="a changed setting needs a restart: the running value is kept" flag=listen old=127.0.0.1:1 new=127.0.0.1:2`,
		`msg="a changed setting needs a restart: the running value is kept" flag=greeting old=hello new=hi`,
		`msg="configuration reloaded" changed.log-level.old=info changed.log-level.new=debug changed.name.old=a changed.name.new=b`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if f.lv.Level() != slog.LevelDebug {
		t.Errorf("log level %v, want debug", f.lv.Level())
	}
	// The kept value is what the next reload compares with: no second
	// warning when the file still asks for the new address.
	before := strings.Count(f.logs.String(), "needs a restart")
	if err := f.rl.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(f.logs.String(), "flag=listen"); n != 2 {
		t.Errorf("-listen warned %d times after two reloads, want each reload to warn (%d before)", n, before)
	}
	if !strings.Contains(f.logs.String(), `msg="configuration reloaded" changed=nothing`) {
		t.Errorf("second reload: %s", f.logs.String())
	}
	if len(got) != 2 {
		t.Errorf("handler ran %d times, want on every reload", len(got))
	}
}

// A broken file changes nothing: no handler runs, the log level stays, the
// error names the file and line, and the metric says the reload failed.
func TestReloadBrokenFileChangesNothing(t *testing.T) {
	f := newReloadFixture(t, "testd:\n  name: a\n")
	ran := false
	f.rl.OnReload(func(context.Context, testDaemon) error { ran = true; return nil }, "name")
	f.write(t, "log-level: debug\ntestd:\n  name: b\n  nmae: c\n")
	err := f.rl.reload(t.Context())
	if err == nil || !strings.Contains(err.Error(), "shardns.yaml:4: testd.nmae: unknown key") {
		t.Fatalf("reload: %v", err)
	}
	if ran || f.lv.Level() != slog.LevelInfo {
		t.Errorf("handler ran %v, level %v", ran, f.lv.Level())
	}
	if !strings.Contains(f.logs.String(), `level=ERROR msg="reload failed: the running configuration is kept"`) || !strings.Contains(f.logs.String(), "shardns.yaml:4") {
		t.Errorf("log: %s", f.logs.String())
	}
	if ok, _ := f.gauges(t); ok != 0 {
		t.Errorf("successful %v after a failed reload", ok)
	}
	// A bad log level is refused the same way.
	f.write(t, "log-level: loud\n")
	if err := f.rl.reload(t.Context()); err == nil || ran {
		t.Errorf("bad level: err %v, handler ran %v", err, ran)
	}
	f.write(t, "testd:\n  name: b\n")
	if err := f.rl.reload(t.Context()); err != nil || !ran {
		t.Errorf("fixed file: err %v, handler ran %v", err, ran)
	}
	if ok, _ := f.gauges(t); ok != 1 {
		t.Errorf("successful %v after a good reload", ok)
	}
}

// A handler's error stops the reload: the handlers after it do not run,
// the level is not applied, and the next reload hands the change again.
func TestReloadHandlerError(t *testing.T) {
	f := newReloadFixture(t, "name: a\n")
	var calls []string
	fail := true
	f.rl.OnReload(func(_ context.Context, next testDaemon) error {
		calls = append(calls, "first "+next.name)
		if fail {
			return errors.New("zone file broken")
		}
		return nil
	}, "name")
	f.rl.OnReload(func(_ context.Context, next testDaemon) error { calls = append(calls, "second "+next.name); return nil })
	f.write(t, "name: b\nlog-level: warn\n")
	if err := f.rl.reload(t.Context()); err == nil || !strings.Contains(err.Error(), "zone file broken") {
		t.Fatalf("reload: %v", err)
	}
	if strings.Join(calls, ";") != "first b" || f.lv.Level() != slog.LevelInfo {
		t.Errorf("calls %q level %v", calls, f.lv.Level())
	}
	fail = false
	if err := f.rl.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if strings.Join(calls, ";") != "first b;first b;second b" || f.lv.Level() != slog.LevelWarn {
		t.Errorf("calls %q level %v", calls, f.lv.Level())
	}
	if !strings.Contains(f.logs.String(), "changed.name.old=a changed.name.new=b") {
		t.Errorf("the retried reload must report the change: %s", f.logs.String())
	}
}

// Reloads arriving together run one after the other: a handler never runs
// alongside another.
func TestReloadSerialized(t *testing.T) {
	f := newReloadFixture(t, "name: a\n")
	var running, most atomic.Int32
	h := func(context.Context, testDaemon) error {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		running.Add(-1)
		return nil
	}
	f.rl.OnReload(h)
	f.rl.OnReload(h)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _ = f.rl.reload(t.Context()) })
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d handlers ran at once", most.Load())
	}
}

// A handler may only claim Reloadable flags; a nil Reloader takes no
// handler and tells no one.
func TestOnReloadChecks(t *testing.T) {
	f := newReloadFixture(t, "")
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "-listen") {
				t.Errorf("claiming -listen: %v", r)
			}
		}()
		f.rl.OnReload(func(context.Context, testDaemon) error { return nil }, "listen")
	}()
	var nilrl *Reloader[testDaemon]
	nilrl.OnReload(func(context.Context, testDaemon) error { return nil }, "name")
	nilrl.Ready()
}

// The reload gauges hold the last result and time.
func TestReloadCollector(t *testing.T) {
	f := newReloadFixture(t, "name: a\n")
	f.write(t, "[")
	start := time.Now()
	_ = f.rl.reload(t.Context())
	want := `
# HELP shardns_config_last_reload_successful Whether the last configuration load (at start, or on SIGHUP) succeeded: 1 yes, 0 no.
# TYPE shardns_config_last_reload_successful gauge
shardns_config_last_reload_successful 0
`
	if err := testutil.CollectAndCompare(f.rl.Collector(), strings.NewReader(want), "shardns_config_last_reload_successful"); err != nil {
		t.Error(err)
	}
	if _, at := f.gauges(t); at < float64(start.UnixNano())/1e9 || at > float64(time.Now().UnixNano())/1e9 {
		t.Errorf("timestamp %v, want the reload's time", at)
	}
}

// Secrets are not logged.
func TestShownHidesSecrets(t *testing.T) {
	for name, want := range map[string]string{"token": "(hidden)", "redis-password": "(hidden)", "redis-password-file": "/x", "listen": "/x"} {
		if got := shown(name, "/x"); got != want {
			t.Errorf("shown(%s) = %q, want %q", name, got, want)
		}
	}
}
