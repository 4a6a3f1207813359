package procs

import (
	"context"
	"flag"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/config"
)

// readyWithin bounds how long a daemon may take to log that it is ready,
// and to return once its context ends.
const readyWithin = 15 * time.Second

// RunInProcess runs a daemon's Run function (run) in this process, logging
// as text into the returned buffer, and waits until its log matches ready.
// It returns ready's first group (such as the address bound), the log, and
// stop, which ends run's context and returns what run returned. The test
// fails if run returns before it is ready or does not return in time.
func RunInProcess(t testing.TB, name string, ready *regexp.Regexp, run func(context.Context, *slog.Logger) error) (string, *Buffer, func() error) {
	t.Helper()
	logs := &Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.NewTextHandler(logs, nil))) }()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(readyWithin):
			t.Fatalf("%s did not return after its context ended:\n%s", name, logs.String())
			return nil
		}
	}
	deadline := time.Now().Add(readyWithin)
	for {
		if m := ready.FindStringSubmatch(logs.String()); m != nil {
			return m[1], logs, stop
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("%s returned %v before it was ready:\n%s", name, err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("%s not ready:\n%s", name, logs.String())
		}
	}
}

// Parse fills d's flags from args as the daemon's main does, with no
// environment.
func Parse(t testing.TB, d config.Daemon, args ...string) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	d.Register(fs)
	if err := config.Parse(fs, args, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
}
