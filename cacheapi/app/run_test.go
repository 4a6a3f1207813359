package app

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/testutil/procs"
	"github.com/shardns/shardns/internal/testutil/redistest"
	"github.com/shardns/shardns/resolverd/service"
)

var (
	resolverdReady = regexp.MustCompile(`msg="resolverd ready" listen=(\S+)`)
	cacheapiReady  = regexp.MustCompile(`msg="cacheapi ready" listen=(\S+)`)
)

// startDaemon runs a daemon's run until the returned stop is called and waits
// for re in its log; it returns re's first group and stop, which ends the
// context and returns what run returned.
func startDaemon(t *testing.T, name string, re *regexp.Regexp, run func(context.Context, *slog.Logger) error) (string, *procs.Buffer, func() error) {
	t.Helper()
	logs := &procs.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.NewTextHandler(logs, nil))) }()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatalf("%s did not return after its context ended:\n%s", name, logs.String())
			return nil
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			return m[1], logs, stop
		}
		select {
		case err := <-done:
			t.Fatalf("%s returned %v\n%s", name, err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("%s not ready:\n%s", name, logs.String())
		}
	}
}

// parse fills d from args as main does.
func parse(t *testing.T, d config.Daemon, args ...string) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	d.Register(fs)
	if err := config.Parse(fs, args, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
}

// cacheapi with every part it has (L1, a Redis shard, the queue's Redis
// and its prefetch counter, the stats publisher, the resolver client, the
// REST API) answers, and when its context ends Run returns nil and leaves
// no goroutine behind.
func TestRunStopsCleanly(t *testing.T) {
	shard := redistest.Start(t)
	qsrv := redistest.Start(t)
	dir := t.TempDir()
	zone := "$TTL 300\n@ IN SOA ns1.example.test. h.example.test. 1 7200 900 1209600 60\n  IN NS ns1.example.test.\nns1 IN A 127.0.0.53\nwww IN A 192.0.2.9\n"
	if err := os.WriteFile(filepath.Join(dir, "example.test.zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	var rcfg service.Config
	parse(t, &rcfg, "-listen", "127.0.0.1:0", "-zones", dir)
	resolver, _, stopResolver := startDaemon(t, "resolverd", resolverdReady, func(ctx context.Context, log *slog.Logger) error {
		return service.Run(ctx, rcfg, log)
	})
	defer func() {
		if err := stopResolver(); err != nil {
			t.Errorf("resolverd: %v", err)
		}
	}()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	var cfg Config
	parse(t, &cfg, "-listen", "127.0.0.1:0", "-resolver", resolver, "-redis", shard.Addr, "-redis-timeout", "2s",
		"-queue-redis", qsrv.Addr, "-token", "test-token", "-drain-timeout", "3s")
	addr, logs, stop := startDaemon(t, "cacheapi", cacheapiReady, func(ctx context.Context, log *slog.Logger) error {
		return Run(ctx, cfg, log)
	})
	for range 2 { // a miss, then a hit
		resp, err := http.Get("http://" + addr + "/lookup?name=www.example.test&type=A")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "192.0.2.9") {
			t.Fatalf("lookup: %d %s", resp.StatusCode, b)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), `msg="cacheapi stopped"`) {
		t.Errorf("no clean stop logged:\n%s", logs.String())
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("cacheapi still serves after Run returned")
	}
}
