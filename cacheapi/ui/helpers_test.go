package ui_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/cacheapi/api"
	"github.com/shardns/shardns/cacheapi/stats"
	"github.com/shardns/shardns/internal/fleetstats"
	"github.com/shardns/shardns/internal/frontend"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/testutil/redistest"
	"github.com/shardns/shardns/internal/testutil/zonetest"
)

// testZone is what the in-process resolver answers from; other names
// under example.test are NXDOMAIN, cached like any answer.
const testZone = `$TTL 300
@    IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 60
     IN NS  ns1.example.test.
ns1  IN A    127.0.0.53
www  IN A    192.0.2.1
www  IN AAAA 2001:db8::1
`

// resolverFunc adapts a function to lookup.Resolver.
type resolverFunc func(ctx context.Context, q []byte) ([]byte, error)

func (f resolverFunc) Resolve(ctx context.Context, q []byte) ([]byte, error) { return f(ctx, q) }

// zoneResolver is resolverd's resolver over testZone, in-process. Cleanup
// waits for the calls it is still making: coalesced calls run detached
// from their request.
func zoneResolver(t testing.TB) lookup.Resolver {
	t.Helper()
	res := zonetest.Resolver(t, nil, "example.test.zone", testZone)
	var inflight sync.WaitGroup
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("a resolver call did not end in 10s")
		}
	})
	return resolverFunc(func(ctx context.Context, q []byte) ([]byte, error) {
		inflight.Add(1)
		defer inflight.Done()
		return res.Resolve(ctx, q)
	})
}

// site is a cacheapi served over real HTTP on loopback.
type site struct {
	fe  *frontend.Frontend
	reg *prometheus.Registry
	srv *httptest.Server
}

// newSite builds a frontend over shards (none: in-process cache only) and
// serves the API over it, with /stats when there are shards. wrap, when
// not nil, wraps the API's handler (to add routes the API lacks).
func newSite(t testing.TB, shards []*redistest.Server, wrap func(http.Handler) http.Handler) *site {
	t.Helper()
	var flags frontend.Flags
	flags.Redis, flags.RedisTimeout = strings.Join(redistest.Addrs(shards), ","), 2*time.Second
	flags.MaxTTL, flags.Stale = 24*time.Hour, time.Hour
	if len(shards) == 0 {
		flags.L1, flags.L1Bytes = 1000, 1<<20
	}
	// With shards, L1 is off: every repeat lookup reads its shard, so the
	// shards' own hit ratios move.
	reg := prometheus.NewRegistry()
	fe, err := frontend.Build(flags, zoneResolver(t), reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = api.New(api.Config{
		Chain: fe.Chain, Gatherer: reg, Cache: fe, Ready: fe,
		Stats: stats.Of(fe.StatsSource()),
	})
	if wrap != nil {
		h = wrap(h)
	}
	s := &site{fe: fe, reg: reg, srv: httptest.NewServer(h)}
	t.Cleanup(func() {
		s.srv.Close()
		if err := fe.Close(); err != nil {
			t.Errorf("frontend close: %v", err)
		}
	})
	return s
}

// publish publishes the site's lookup counters to the fleet every
// interval, as a running cacheapi does every 5s, until the test ends.
func (s *site) publish(t testing.TB, id string, interval time.Duration) {
	t.Helper()
	p := fleetstats.NewPublisher(fleetstats.PublisherConfig{
		Redis: s.fe.Redis.Client(), ID: id, Kind: "cacheapi", Gatherer: s.reg, Interval: interval,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
