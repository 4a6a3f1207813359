package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestLookupAnswerThenL1(t *testing.T) {
	f := newFixture(t, nil)
	srv := f.server(t)

	code, ctype, body := get(t, srv, http.MethodGet, "/lookup?name=www.example.test&type=A")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "application/json") {
		t.Fatalf("status %d type %q: %s", code, ctype, body)
	}
	a := decodeAnswer(t, body)
	if a.Status != dns.RcodeSuccess || a.Source != "resolver" || !a.RD || !a.RA || a.TC {
		t.Errorf("first lookup: %+v", a)
	}
	if len(a.Question) != 1 || a.Question[0].Name != "www.example.test." || a.Question[0].Type != dns.TypeA {
		t.Errorf("question %+v", a.Question)
	}
	if len(a.Answer) != 1 || a.Answer[0].Name != "www.example.test." || a.Answer[0].Type != dns.TypeA ||
		a.Answer[0].TTL != 300 || a.Answer[0].Data != "192.0.2.1" {
		t.Errorf("answer %+v, want www.example.test. A 192.0.2.1 TTL 300", a.Answer)
	}

	// The second lookup is a hit, and its TTL has counted down.
	f.clock.Add(100 * time.Second)
	_, _, body = get(t, srv, http.MethodGet, "/lookup?name=www.example.test.&type=A")
	a = decodeAnswer(t, body)
	if a.Source != "l1" {
		t.Errorf("second lookup from %q, want l1", a.Source)
	}
	if len(a.Answer) != 1 || a.Answer[0].TTL != 200 || a.Answer[0].Data != "192.0.2.1" {
		t.Errorf("second answer %+v, want TTL 200", a.Answer)
	}

	// The name is answered as the client spelled it, from the same entry.
	_, _, body = get(t, srv, http.MethodGet, "/lookup?name=WWW.Example.Test")
	a = decodeAnswer(t, body)
	if a.Source != "l1" || len(a.Question) != 1 || a.Question[0].Name != "WWW.Example.Test." {
		t.Errorf("mixed case: source %q question %+v", a.Source, a.Question)
	}
}

func TestLookupTypes(t *testing.T) {
	srv := newFixture(t, nil).server(t)
	for _, typ := range []string{"28", "aaaa", "AAAA", "TYPE28"} {
		code, _, body := get(t, srv, http.MethodGet, "/lookup?name=www.example.test&type="+typ)
		if code != http.StatusOK {
			t.Errorf("type=%s: status %d: %s", typ, code, body)
			continue
		}
		a := decodeAnswer(t, body)
		if len(a.Question) != 1 || a.Question[0].Type != dns.TypeAAAA {
			t.Errorf("type=%s: question %+v", typ, a.Question)
		}
		if len(a.Answer) != 1 || a.Answer[0].Type != dns.TypeAAAA || a.Answer[0].Data != "2001:db8::1" {
			t.Errorf("type=%s: answer %+v", typ, a.Answer)
		}
	}
	_, _, body := get(t, srv, http.MethodGet, "/lookup?name=txt.example.test&type=txt")
	if a := decodeAnswer(t, body); len(a.Answer) != 1 || a.Answer[0].Data != `"hello world"` {
		t.Errorf("TXT answer %+v", a.Answer)
	}
}

func TestLookupNXDOMAIN(t *testing.T) {
	f := newFixture(t, nil)
	srv := f.server(t)
	for i, want := range []string{"resolver", "l1"} {
		code, _, body := get(t, srv, http.MethodGet, "/lookup?name=nope.example.test&type=A")
		if code != http.StatusOK {
			t.Fatalf("NXDOMAIN is an answer: status %d: %s", code, body)
		}
		a := decodeAnswer(t, body)
		if a.Status != dns.RcodeNameError || len(a.Answer) != 0 || a.Source != want {
			t.Errorf("lookup %d: status %d answers %d source %q, want 3, none, %s", i, a.Status, len(a.Answer), a.Source, want)
		}
		// RFC 2308: the negative TTL is min(SOA TTL 300, MINIMUM 60).
		if len(a.Authority) != 1 || a.Authority[0].Type != dns.TypeSOA || a.Authority[0].Name != "example.test." || a.Authority[0].TTL != 60 {
			t.Errorf("lookup %d: authority %+v, want the zone's SOA with TTL 60", i, a.Authority)
		}
	}
}

func TestLookupOutsideZoneRefused(t *testing.T) {
	srv := newFixture(t, nil).server(t)
	code, _, body := get(t, srv, http.MethodGet, "/lookup?name=www.example.net")
	if a := decodeAnswer(t, body); code != http.StatusOK || a.Status != dns.RcodeRefused {
		t.Errorf("status %d dns status %d, want 200 and REFUSED", code, a.Status)
	}
}

func TestLookupBadRequests(t *testing.T) {
	srv := newFixture(t, nil).server(t)
	long := strings.Repeat("a", 300)
	for _, path := range []string{
		"/lookup",
		"/lookup?type=A",
		"/lookup?name=",
		"/lookup?name=" + long + ".example.test",
		"/lookup?name=" + long,
		"/lookup?name=a..b",
		"/lookup?name=.example.test",
		"/lookup?name=%5C0%5C", // `\0\`: IsDomainName accepts it, yet Fqdn leaves it unqualified
		"/lookup?name=" + strings.Repeat("abcdefghi.", 26), // 260 characters
		"/lookup?name=www.example.test&type=BOGUS",
		"/lookup?name=www.example.test&type=0",
		"/lookup?name=www.example.test&type=65536",
		"/lookup?name=www.example.test&type=-1",
		"/lookup?name=www.example.test&type=TYPE",
		"/lookup?name=www.example.test&type=TYPE70000",
	} {
		code, ctype, body := get(t, srv, http.MethodGet, path)
		if code != http.StatusBadRequest {
			t.Errorf("%.60s: status %d, want 400", path, code)
		}
		var e errorBody
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || !strings.HasPrefix(ctype, "application/json") {
			t.Errorf("%.60s: body %q type %q, want a JSON error", path, body, ctype)
		}
	}
}

func TestRoutes(t *testing.T) {
	f := newFixture(t, nil)
	srv := f.server(t)
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{http.MethodPost, "/lookup?name=www.example.test", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/lookup", http.StatusMethodNotAllowed},
		{http.MethodGet, "/no/such/route", http.StatusNotFound},
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodGet, "/readyz", http.StatusOK},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/dns-query", http.StatusMethodNotAllowed},
		{http.MethodGet, "/dns-query", http.StatusBadRequest},
		{http.MethodGet, "/cache/www.example.test", http.StatusNotFound}, // no Cache configured
		{http.MethodGet, "/lookup?name=" + strings.Repeat("a", maxURI), http.StatusRequestURITooLong},
		{http.MethodGet, "/" + strings.Repeat("a", maxURI), http.StatusRequestURITooLong},
	} {
		code, ctype, body := get(t, srv, c.method, c.path)
		if code != c.code {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, code, c.code)
		}
		if !strings.HasPrefix(ctype, "application/json") || !json.Valid(body) {
			t.Errorf("%s %s: %q body %q, want JSON", c.method, c.path, ctype, body)
		}
	}
}

func TestMetrics(t *testing.T) {
	srv := newFixture(t, nil).server(t)
	get(t, srv, http.MethodGet, "/lookup?name=www.example.test")
	get(t, srv, http.MethodGet, "/lookup?name=www.example.test")
	code, ctype, body := get(t, srv, http.MethodGet, "/metrics")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("/metrics: status %d type %q", code, ctype)
	}
	for _, want := range []string{
		`shardns_lookup_answers_total{source="resolver"} 1`,
		`shardns_lookup_answers_total{source="l1"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Without a gatherer there is no /metrics route.
	plain := serve(t, New(Config{Chain: newFixture(t, nil).chain}))
	if code, _, _ := get(t, plain, http.MethodGet, "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics without a gatherer: %d, want 404", code)
	}
}

func TestResolverFailures(t *testing.T) {
	// Nothing listens upstream: the resolver fails fast, 503.
	srv := newFixture(t, newForwarder(t, deadAddr(t), time.Second)).server(t)
	code, ctype, body := get(t, srv, http.MethodGet, "/lookup?name=www.example.net")
	var e errorBody
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(ctype, "application/json") || json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Errorf("resolver down: status %d %q %s, want 503 with a JSON error", code, ctype, body)
	}
	// The zone still answers.
	if code, _, _ := get(t, srv, http.MethodGet, "/lookup?name=www.example.test"); code != http.StatusOK {
		t.Errorf("zone name with the upstream down: %d", code)
	}

	// The upstream never answers and is given longer than the lookup
	// budget: the budget runs out first, 504.
	srv = newFixture(t, newForwarder(t, blackhole(t), 2500*time.Millisecond)).server(t)
	code, _, body = get(t, srv, http.MethodGet, "/lookup?name=slow.example.net")
	if code != http.StatusGatewayTimeout || json.Unmarshal(body, &e) != nil {
		t.Errorf("resolver silent: status %d %s, want 504 with a JSON error", code, body)
	}
}
