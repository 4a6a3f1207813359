package service

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/shardns/shardns/internal/resolverclient"
	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/internal/testutil/procs"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

var httpAddr = regexp.MustCompile(`msg="serving HTTP" addr=([0-9.:]+)`)

// resolverd with every part it has (zones, the gRPC server, the queue's
// workers and the prefetch scheduler over Redis, /metrics) answers, and
// when its context ends Run returns nil, the scheduler has given its lease
// up, and no goroutine is left behind.
func TestRunStopsCleanly(t *testing.T) {
	shard := redistest.Start(t)
	qsrv := redistest.Start(t)
	qc := qsrv.Client()
	zones := dnstest.ExampleZones(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	var cfg Config
	procs.Parse(t, &cfg,
		"-listen", "127.0.0.1:0", "-zones", zones, "-metrics", "127.0.0.1:0",
		"-redis", shard.Addr, "-queue-redis", qsrv.Addr, "-workers", "2", "-drain-timeout", "3s")
	addr, logs, stop := procs.RunInProcess(t, "resolverd", readyRE, func(ctx context.Context, log *slog.Logger) error {
		return Run(ctx, cfg, log)
	})
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(logs.String(), "queue workers started") {
		if time.Now().After(deadline) {
			t.Fatalf("resolverd's workers did not start:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	r, err := resolverclient.Dial([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	qctx, qcancel := context.WithTimeout(t.Context(), 5*time.Second)
	m, err := dnstest.Exchange(qctx, r, q)
	qcancel()
	r.Close()
	if err != nil || len(m.Answer) != 1 || !strings.Contains(m.Answer[0].String(), "192.0.2.9") {
		t.Fatalf("resolve: %v %v", m, err)
	}
	for _, m := range httpAddr.FindAllStringSubmatch(logs.String(), -1) {
		resp, err := http.Get("http://" + m[1] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	http.DefaultClient.CloseIdleConnections()
	lease := "q:{warm}:scheduler"
	for n, _ := qc.Exists(t.Context(), lease).Result(); n == 0; n, _ = qc.Exists(t.Context(), lease).Result() {
		if time.Now().After(deadline) {
			t.Fatal("the prefetch scheduler never took its lease")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	if n, err := qc.Exists(t.Context(), lease).Result(); err != nil || n != 0 {
		t.Errorf("scheduler lease after the stop: %d, %v; want it given up", n, err)
	}
	if !strings.Contains(logs.String(), `msg="resolverd stopped"`) {
		t.Errorf("no clean stop logged:\n%s", logs.String())
	}
}
