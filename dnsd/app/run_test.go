package app

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

	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/internal/testutil/procs"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// upstream serves up.test. A 192.0.2.1 on a loopback UDP port until the
// test ends.
func upstream(t *testing.T) string {
	t.Helper()
	return dnstest.StartUDP(t, dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		// The name as asked: the forwarder may mix its case (0x20).
		if len(q.Question) == 1 && strings.EqualFold(q.Question[0].Name, "up.test.") && q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(q.Question[0].Name + " 300 IN A 192.0.2.1")
			m.Answer = []dns.RR{rr}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	}))
}

var (
	boundUDP = regexp.MustCompile(`msg="dnsd ready".* bound=udp/([0-9.:]+)`)
	httpAddr = regexp.MustCompile(`msg="serving HTTP" addr=([0-9.:]+)`)
)

// dnsd with every part it has (the in-process resolver over a loopback
// upstream and a zone, L1, a Redis shard, the queue's Redis and its
// prefetch counter, the stats publisher, DNS, the REST API and /metrics)
// answers, and when its context ends Run returns nil and leaves no
// goroutine behind.
func TestRunStopsCleanly(t *testing.T) {
	shard := redistest.Start(t)
	qsrv := redistest.Start(t)
	up := upstream(t)
	zones := dnstest.ExampleZones(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	var cfg Config
	procs.Parse(t, &cfg,
		"-listen", "127.0.0.1:0", "-upstream", up, "-zones", zones,
		"-redis", shard.Addr, "-redis-timeout", "2s", "-queue-redis", qsrv.Addr,
		"-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-token", "test-token",
		"-drain-timeout", "3s")
	addr, logs, stop := procs.RunInProcess(t, "dnsd", boundUDP, func(ctx context.Context, log *slog.Logger) error {
		return Run(ctx, cfg, log)
	})
	c := &dns.Client{Timeout: 5 * time.Second}
	for name, want := range map[string]string{"up.test.": "192.0.2.1", "www.example.test.": "192.0.2.9"} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		for range 2 { // a miss, then a hit
			r, _, err := c.Exchange(q, addr)
			if err != nil || len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), want) {
				t.Fatalf("%s: %v %v", name, r, err)
			}
		}
	}
	for _, m := range httpAddr.FindAllStringSubmatch(logs.String(), -1) {
		resp, err := http.Get("http://" + m[1] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	http.DefaultClient.CloseIdleConnections()

	if err := stop(); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	for _, want := range []string{`msg="dnsd shutting down"`, `msg="dnsd stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	late := &dns.Client{Timeout: 500 * time.Millisecond}
	if _, _, err := late.Exchange(new(dns.Msg).SetQuestion("up.test.", dns.TypeA), addr); err == nil {
		t.Error("dnsd still answers after Run returned")
	}
}
