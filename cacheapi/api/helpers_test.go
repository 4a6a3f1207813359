package api

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/testutil/zonetest"
	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/resolve"
)

// testZone is what the in-process resolver answers from.
const testZone = `$TTL 300
@    IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 60
     IN NS  ns1.example.test.
ns1  IN A    127.0.0.53
www  IN A    192.0.2.1
www  IN AAAA 2001:db8::1
txt  IN TXT  "hello world"
`

// resolverFunc adapts resolve.Resolver to lookup.Resolver.
type resolverFunc func(ctx context.Context, q []byte) ([]byte, error)

func (f resolverFunc) Resolve(ctx context.Context, q []byte) ([]byte, error) { return f(ctx, q) }

// clock is a settable time source shared by the chain and L1.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// fixture is the API over a real chain: L1, then the in-process resolver
// (local zone, and fwd for other names when not nil).
type fixture struct {
	chain   lookup.Handler
	handler http.Handler
	reg     *prometheus.Registry
	clock   *clock
}

func newFixture(t testing.TB, fwd resolve.Forwarder) *fixture {
	t.Helper()
	res := zonetest.Resolver(t, fwd, "example.test.zone", testZone)
	// Coalesced resolver calls run detached from the request; cleanup
	// waits for them so that no goroutine outlives the test.
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
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	reg := prometheus.NewRegistry()
	chain := lookup.Build(lookup.Config{
		Store: cache.NewLayered(cache.NewMemory(cache.MemoryConfig{MaxEntries: 1000, MaxBytes: 1 << 20, Now: clk.Now}), nil),
		Resolver: resolverFunc(func(ctx context.Context, q []byte) ([]byte, error) {
			inflight.Add(1)
			defer inflight.Done()
			return res.Resolve(ctx, q)
		}),
		Policy:     dnsmsg.Policy{MaxTTL: 24 * time.Hour},
		Registerer: reg,
		Now:        clk.Now,
	})
	return &fixture{chain: chain, handler: New(Config{Chain: chain, Gatherer: reg}), reg: reg, clock: clk}
}

// server serves the fixture over real HTTP on loopback.
func (f *fixture) server(t testing.TB) *httptest.Server {
	t.Helper()
	return serve(t, f.handler)
}

// serve serves h over real HTTP on loopback until cleanup.
func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path from srv and returns the status, content type and body.
func get(t testing.TB, srv *httptest.Server, method, path string) (int, string, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// decodeAnswer parses a dns-json body.
func decodeAnswer(t testing.TB, body []byte) jsonAnswer {
	t.Helper()
	var a jsonAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("body is not dns-json: %v: %s", err, body)
	}
	return a
}

// newForwarder forwards to addr with the given per-attempt timeout and no
// background probes.
func newForwarder(t testing.TB, addr string, timeout time.Duration) *forward.Forwarder {
	t.Helper()
	f, err := forward.New(forward.Config{Upstreams: []string{addr}, Timeout: timeout, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// blackhole returns a loopback UDP address that never answers.
func blackhole(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}
