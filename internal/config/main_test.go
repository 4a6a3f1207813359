package config

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

type testDaemon struct{ name, format, level string }

func (d *testDaemon) Register(fs *flag.FlagSet) {
	fs.StringVar(&d.name, "name", "x", "a name")
	fs.StringVar(&d.format, "log-format", "text", "log format")
	fs.StringVar(&d.level, "log-level", "info", "log level")
}

func (d *testDaemon) LogSettings() (string, string) { return d.format, d.level }

func TestMainExitCodes(t *testing.T) {
	env := func(k string) string {
		if k == "SHARDNS_NAME" {
			return "from-env"
		}
		return ""
	}
	ok := func(context.Context, *slog.Logger) error { return nil }
	fail := func(context.Context, *slog.Logger) error { return errors.New("boom") }
	for _, tc := range []struct {
		args []string
		run  func(context.Context, *slog.Logger) error
		code int
		out  string
	}{
		{[]string{"-h"}, ok, 0, "[$SHARDNS_NAME]"},
		{[]string{"-bogus"}, ok, 2, "flag provided but not defined"},
		{[]string{"-log-format", "xml"}, ok, 2, "log format"},
		{nil, fail, 1, "boom"},
		{nil, ok, 0, ""},
	} {
		var stderr bytes.Buffer
		d := &testDaemon{}
		if code := Main("testd", tc.args, env, &stderr, d, tc.run); code != tc.code || !strings.Contains(stderr.String(), tc.out) {
			t.Errorf("%v: exit %d, want %d; stderr %q, want it to contain %q", tc.args, code, tc.code, stderr.String(), tc.out)
		}
		if tc.code == 0 && len(tc.args) == 0 && d.name != "from-env" {
			t.Errorf("flag from the environment: %q", d.name)
		}
	}
}

// SIGTERM ends run's context, and run's clean return is exit code 0.
func TestMainStopsOnSIGTERM(t *testing.T) {
	var stderr bytes.Buffer
	run := func(ctx context.Context, _ *slog.Logger) error {
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
	if code := Main("testd", nil, func(string) string { return "" }, &stderr, &testDaemon{}, run); code != 0 {
		t.Errorf("exit %d after SIGTERM; stderr %q", code, stderr.String())
	}
}
