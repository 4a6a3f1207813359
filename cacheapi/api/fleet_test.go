package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/frontend"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/testutil/redistest"
	"github.com/shardns/shardns/internal/testutil/zonetest"
	"github.com/shardns/shardns/resolverd/resolve"
)

// zoneResolver is a real in-process resolver answering testZone (and
// forwarding to fwd when not nil). Cleanup waits for the calls it is still
// making: coalesced calls run detached from their request.
func zoneResolver(t testing.TB, fwd resolve.Forwarder) lookup.Resolver {
	t.Helper()
	res := newZoneResolver(t, fwd)
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

// newZoneResolver is resolverd's resolver over testZone, loaded from a
// temporary folder, forwarding other names to fwd when not nil.
func newZoneResolver(t testing.TB, fwd resolve.Forwarder) *resolve.Resolver {
	t.Helper()
	return zonetest.Resolver(t, fwd, "example.test.zone", testZone)
}

// member is one frontend of a fleet, serving the API on loopback.
type member struct {
	fe  *frontend.Frontend
	h   http.Handler
	srv *httptest.Server
}

// testFlags are frontend flags for tests: L1 on, Redis over shards (none:
// L1 only), a generous Redis budget for loaded machines.
func testFlags(shards []*redistest.Server) frontend.Flags {
	f := frontend.Flags{L1: 1000, L1Bytes: 1 << 20}
	f.Redis, f.RedisTimeout = strings.Join(redistest.Addrs(shards), ","), 2*time.Second
	f.MaxTTL, f.Stale = 24*time.Hour, time.Hour
	return f
}

// testToken is the bearer token of newMember's servers; testAuth sends it.
const testToken = "s3cret-test-token"

var testAuth = http.Header{"Authorization": {"Bearer " + testToken}}

// newMember builds a frontend with internal/frontend from flags and
// serves the API over it; edit adjusts the API's config.
func newMember(t testing.TB, flags frontend.Flags, res lookup.Resolver, edit func(*Config)) *member {
	t.Helper()
	reg := prometheus.NewRegistry()
	fe, err := frontend.Build(flags, res, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Chain: fe.Chain, Gatherer: reg, Cache: fe, Ready: fe, Token: testToken}
	if edit != nil {
		edit(&cfg)
	}
	m := &member{fe: fe, h: New(cfg)}
	m.srv = httptest.NewServer(m.h)
	t.Cleanup(func() {
		m.srv.Close()
		if err := fe.Close(); err != nil {
			t.Errorf("frontend close: %v", err)
		}
	})
	return m
}

// newFleet builds n frontends over the same shards, each with its own L1
// and its own in-process resolver.
func newFleet(t testing.TB, shards []*redistest.Server, n int) []*member {
	t.Helper()
	out := make([]*member, n)
	for i := range out {
		out[i] = newMember(t, testFlags(shards), zoneResolver(t, nil), nil)
	}
	return out
}

// do sends a request with the given headers and body and returns the
// response with its body read.
func do(t testing.TB, srv *httptest.Server, method, path string, header http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// mustJSONError checks a JSON error answer with status code.
func mustJSONError(t testing.TB, what string, resp *http.Response, body []byte, code int) {
	t.Helper()
	var e errorBody
	if resp.StatusCode != code || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Errorf("%s: status %d %q %s, want %d with a JSON error", what, resp.StatusCode, resp.Header.Get("Content-Type"), body, code)
	}
}

// holderOf returns the address of the one shard holding key ("" if none).
func holderOf(t testing.TB, shards []*redistest.Server, key string) string {
	t.Helper()
	at := ""
	for _, s := range shards {
		n, err := s.Client().Exists(context.Background(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			if at != "" {
				t.Fatalf("%s held by %s and %s", key, at, s.Addr)
			}
			at = s.Addr
		}
	}
	return at
}

// waitUntil polls cond every 10ms until it holds or limit passes.
func waitUntil(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
