package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/internal/testutil/procs"
	"github.com/shardns/shardns/internal/testutil/redistest"
	"github.com/shardns/shardns/resolverd/service"
)

var (
	resolverdReady = regexp.MustCompile(`msg="resolverd ready" listen=(\S+)`)
	cacheapiReady  = regexp.MustCompile(`msg="cacheapi ready" listen=(\S+)`)
)

// cacheapi with every part it has (L1, a Redis shard, the queue's Redis
// and its prefetch counter, the stats publisher, the resolver client, the
// REST API) answers, and when its context ends Run returns nil and leaves
// no goroutine behind.
func TestRunStopsCleanly(t *testing.T) {
	shard := redistest.Start(t)
	qsrv := redistest.Start(t)
	var rcfg service.Config
	procs.Parse(t, &rcfg, "-listen", "127.0.0.1:0", "-zones", dnstest.ExampleZones(t))
	resolver, _, stopResolver := procs.RunInProcess(t, "resolverd", resolverdReady, func(ctx context.Context, log *slog.Logger) error {
		return service.Run(ctx, rcfg, log)
	})
	defer func() {
		if err := stopResolver(); err != nil {
			t.Errorf("resolverd: %v", err)
		}
	}()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	var cfg Config
	procs.Parse(t, &cfg, "-listen", "127.0.0.1:0", "-resolver", resolver, "-redis", shard.Addr, "-redis-timeout", "2s",
		"-queue-redis", qsrv.Addr, "-token", "test-token", "-drain-timeout", "3s")
	addr, logs, stop := procs.RunInProcess(t, "cacheapi", cacheapiReady, func(ctx context.Context, log *slog.Logger) error {
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
