package api

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	f := newFixture(t, nil)
	h := New(Config{Chain: f.chain, Rate: 1, Burst: 2, Now: clk.Now, ACL: mustACL(t, "any")})
	send := func(path, remote string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
		req.RemoteAddr, req.Host = remote, "localhost"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	const a, b = "192.0.2.1:1000", "192.0.2.2:1000"
	for i := range 2 {
		if rec := send("/lookup?name=www.example.test", a); rec.Code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, rec.Code)
		}
	}
	rec := send("/dns-query?dns=AAA", a)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("over the limit: %d Retry-After %q: %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	mustJSONError(t, "429", rec.Result(), rec.Body.Bytes(), http.StatusTooManyRequests)
	if rec := send("/lookup?name=www.example.test", b); rec.Code != http.StatusOK {
		t.Errorf("another client: %d", rec.Code)
	}
	if rec := send("/healthz", a); rec.Code != http.StatusOK {
		t.Errorf("/healthz is not rate-limited: %d", rec.Code)
	}
	clk.Add(time.Second)
	if rec := send("/lookup?name=www.example.test", a); rec.Code != http.StatusOK {
		t.Errorf("a second later: %d", rec.Code)
	}
	if rec := send("/lookup?name=www.example.test", a); rec.Code != http.StatusTooManyRequests {
		t.Errorf("the refilled token was spent: %d", rec.Code)
	}
}

func TestLimiterBuckets(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	l := newLimiter(0.5, 0, clk.Now) // burst max(1, rate) = 1
	p := netip.MustParsePrefix("192.0.2.1/32")
	if ok, _ := l.allow(p); !ok {
		t.Fatal("first request refused")
	}
	ok, wait := l.allow(p)
	if ok || wait != 2*time.Second {
		t.Errorf("second request: %v, wait %v; want refused for 2s", ok, wait)
	}
	clk.Add(2 * time.Second)
	if ok, _ := l.allow(p); !ok {
		t.Error("refused after the wait")
	}
	// One IPv6 /64 is one client.
	for i, remote := range []string{"[2001:db8::1]:1", "[2001:db8::2]:1", "[2001:db8:0:1::1]:1"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote
		ok, _ := l.allow(clientPrefix(req))
		if want := i != 1; ok != want {
			t.Errorf("%s: allowed %v, want %v", remote, ok, want)
		}
	}
	if got := clientPrefix(&http.Request{RemoteAddr: "[::ffff:192.0.2.9]:5"}); got.String() != "192.0.2.9/32" {
		t.Errorf("mapped IPv4: %v", got)
	}
}
