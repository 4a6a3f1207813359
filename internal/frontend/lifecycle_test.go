package frontend

import (
	"flag"
	"log/slog"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/fleetstats"
	"github.com/shardns/shardns/internal/lifecycle"
	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// Build over a Redis shard and a queue Redis starts the flush subscriber
// and the prefetch counter; the stats publisher runs in a group as the
// daemons run it. Stopping the group and closing the frontend ends every
// goroutine they started, after the counter's last send and the
// publisher's removal of its entry reached Redis.
func TestBuildCloseLeavesNoGoroutine(t *testing.T) {
	shard := redistest.Start(t)
	qsrv := redistest.Start(t)
	// The servers' processes and the test's own goroutines are not the
	// frontend's.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	var f Flags
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse([]string{"-redis", shard.Addr, "-redis-timeout", "2s", "-queue-redis", qsrv.Addr, "-l1", "100"}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	fe, err := Build(f, dnstest.MsgResolver(nxResolver{}.answer), reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	g := lifecycle.New(t.Context(), nil)
	g.OnClose("frontend", fe.Close)
	g.Add("fleet stats", fe.StatsPublisher("testd", reg, nil))

	m := new(dns.Msg)
	m.SetQuestion("nx.example.test.", dns.TypeA)
	q, rej := dnsmsg.ParseQuery(m)
	if rej != nil {
		t.Fatal(rej)
	}
	for range 3 { // a miss, then two hits for the counter
		if _, err := fe.Chain.Lookup(t.Context(), &q); err != nil {
			t.Fatal(err)
		}
	}
	qc := redis.NewClient(&redis.Options{Addr: qsrv.Addr})
	defer qc.Close()
	sc := redis.NewClient(&redis.Options{Addr: shard.Addr})
	defer sc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := sc.ZCard(t.Context(), fleetstats.FrontendsKey).Result(); n == 0; n, _ = sc.ZCard(t.Context(), fleetstats.FrontendsKey).Result() {
		if time.Now().After(deadline) {
			t.Fatal("the stats publisher never published")
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	hits, err := qc.ZScore(t.Context(), "q:{warm}:hot:hits", q.Key).Result()
	if err != nil || hits < 2 {
		t.Errorf("hits sent for %s: %v, %v; want the counter's last send (2) at Close", q.Key, hits, err)
	}
	if n, err := sc.ZCard(t.Context(), fleetstats.FrontendsKey).Result(); err != nil || n != 0 {
		t.Errorf("published frontends after the stop: %d, %v; want the entry removed", n, err)
	}
	// A second Close is harmless.
	if err := fe.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
