package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/cacheapi/stats"
	"github.com/shardns/shardns/internal/fleetstats"
	"github.com/shardns/shardns/internal/frontend"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// TestOpenAPIConformance drives every route of real servers (a real chain,
// four real Redis shards, the real resolver, a real work queue on its own
// Redis; one resolver down, one silent, one server rate-limited, one
// without a queue) through every documented status it can reach, and
// checks each request and answer against openapi.yaml.
func TestOpenAPIConformance(t *testing.T) {
	c := newConformance(t)
	shards := redistest.StartN(t, 4)
	q, queueRedis := openAPIQueue(t)
	const token = "s3cret"
	var gatherer prometheus.Gatherer
	m := newMember(t, testFlags(shards), zoneResolver(t, nil), func(cfg *Config) {
		cfg.Token = token
		cfg.Stats = stats.Of(cfg.Cache.(*frontend.Frontend).StatsSource())
		cfg.Jobs = q
		gatherer = cfg.Gatherer
	})
	srv := m.srv
	auth := http.Header{"Authorization": {"Bearer " + token}}
	const get, del = http.MethodGet, http.MethodDelete

	if body := c.expect(t, srv, 200, get, "/openapi.yaml", nil, nil); !bytes.Equal(body, openAPIDocument) {
		t.Errorf("/openapi.yaml serves %d bytes, not the embedded document", len(body))
	}
	c.expect(t, srv, 200, get, "/healthz", nil, nil)
	c.expect(t, srv, 200, get, "/readyz", nil, nil)

	openAPILookups(t, c, srv, shards)
	wire := openAPIDoH(t, c, srv)
	openAPICache(t, c, srv, auth)
	finished, canceled := openAPIJobs(t, c, srv, auth, q)
	openAPINoQueue(t, c, auth)

	// Stats, with this frontend's counters published, and metrics.
	p := fleetstats.NewPublisher(fleetstats.PublisherConfig{Redis: m.fe.Redis.Client(), ID: "openapi-test", Kind: "cacheapi", Gatherer: gatherer})
	if err := p.Publish(t.Context()); err != nil {
		t.Fatal(err)
	}
	var st stats.Response
	if err := json.Unmarshal(c.expect(t, srv, 200, get, "/stats", nil, nil), &st); err != nil || len(st.Shards) != 4 || len(st.Frontends) == 0 {
		t.Errorf("/stats: %v: %d shards, %d frontends; want 4 and the published one", err, len(st.Shards), len(st.Frontends))
	}
	c.expect(t, srv, 200, http.MethodHead, "/stats", nil, nil)
	c.expect(t, srv, 200, get, "/metrics", nil, nil)

	openAPIStatusPage(t, c, srv)
	openAPIOutside(t, c, srv, auth, wire)
	openAPIFailures(t, c)
	openAPIRateLimit(t, c, wire)
	openAPIOutsideACL(t, c, wire)

	// Every shard down, and the work queue's Redis.
	for _, s := range shards {
		s.Kill()
	}
	queueRedis.Kill()
	for _, r := range []struct {
		method, target string
		header         http.Header
		body           []byte
	}{
		{get, "/cache/www.example.test", auth, nil},
		{del, "/cache/www.example.test", auth, nil},
		{get, "/readyz", nil, nil},
		{get, "/jobs", nil, nil},
		{http.MethodPost, "/jobs", withContentType(auth, "application/json"), []byte(`{"names":["www.example.test"]}`)},
		{get, "/jobs/" + finished, nil, nil},
		{del, "/jobs/" + canceled, auth, nil},
	} {
		waitUntil(t, 10*time.Second, r.method+" "+r.target+" with every shard and the queue down answers 503", func() bool {
			resp, _ := c.send(t, srv, r.method, r.target, r.header, r.body)
			return resp.StatusCode == http.StatusServiceUnavailable
		})
	}

	// With the whole tier down /stats still shows the process's own
	// numbers, and says what it could not read.
	waitUntil(t, 10*time.Second, "GET /stats with every shard down lists the failures", func() bool {
		var st stats.Response
		resp, body := c.send(t, srv, get, "/stats", nil, nil)
		return resp.StatusCode == http.StatusOK && json.Unmarshal(body, &st) == nil && st.Process != nil &&
			st.Process.Queries > 0 && len(st.Errors) > 0
	})
	c.expect(t, srv, 200, http.MethodHead, "/stats", nil, nil)

	// The documented statuses no request here can cause, and why.
	c.checkCoverage(t, map[string]string{
		"GET /stats 503":        "only when the process's own numbers cannot be gathered either: a registry that fails to gather",
		"HEAD /stats 503":       "only when the process's own numbers cannot be gathered either: a registry that fails to gather",
		"GET /lookup 500":       "only a reply that cannot be packed or read back",
		"GET /dns-query 500":    "only a reply that cannot be packed or read back",
		"POST /dns-query 500":   "only a reply that cannot be packed",
		"GET /cache/{name} 500": "only a stored entry that cannot be read back",
		"GET /metrics 500":      "only a registry that fails to gather",
	})
}

// openAPILookups covers /lookup: from the resolver, from L1, other types,
// flags, NXDOMAIN, answers shardns makes itself, from a shard; bad requests.
func openAPILookups(t *testing.T, c *conformance, srv *httptest.Server, shards []*redistest.Server) {
	t.Helper()
	const get = http.MethodGet
	for _, target := range []string{
		"/lookup?name=www.example.test",
		"/lookup?name=www.example.test",
		"/lookup?name=WWW.example.test.&type=aaaa&do=1&cd=true",
		"/lookup?name=txt.example.test&type=16",
		"/lookup?name=nope.example.test",
		"/lookup?name=www.example.test&type=ANY",
		"/lookup?name=example.test&type=AXFR",
	} {
		c.expect(t, srv, 200, get, target, nil, nil)
	}
	// From a shard, on a second frontend.
	other := newMember(t, testFlags(shards), zoneResolver(t, nil), nil)
	if a := decodeAnswer(t, c.expect(t, other.srv, 200, get, "/lookup?name=www.example.test", nil, nil)); a.Source != "redis" || a.Shard == "" {
		t.Errorf("second frontend: source %q shard %q, want a redis answer with its shard", a.Source, a.Shard)
	}
	for _, target := range []string{
		"/lookup",
		"/lookup?name=a..b",
		"/lookup?name=www.example.test&type=BOGUS",
		"/lookup?name=" + strings.Repeat("a.", 600),
	} {
		c.expect(t, srv, 400, get, target, nil, nil)
	}
}

// openAPIDoH covers /dns-query, RFC 8484 and dns-json, and returns the
// query it sent.
func openAPIDoH(t *testing.T, c *conformance, srv *httptest.Server) []byte {
	t.Helper()
	const get, post = http.MethodGet, http.MethodPost
	wire := dohQuery(t, "www.example.test.", dns.TypeA, 0x1234, false)
	response := bytes.Clone(wire)
	response[2] |= 0x80
	jsonAccept := http.Header{"Accept": {mimeDNSJSON}}
	c.expect(t, srv, 200, get, "/dns-query?dns="+base64.RawURLEncoding.EncodeToString(wire), nil, nil)
	c.expect(t, srv, 200, post, "/dns-query", dnsMessage, wire)
	c.expect(t, srv, 200, get, "/dns-query?name=www.example.test&type=AAAA", jsonAccept, nil)
	c.expect(t, srv, 200, get, "/dns-query?name=txt.example.test&type=TXT&ct=application/dns-json", nil, nil)
	for _, target := range []string{
		"/dns-query",
		"/dns-query?dns=%21%21%21",
		"/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(wire[:5]),
		"/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(response),
	} {
		c.expect(t, srv, 400, get, target, nil, nil)
	}
	c.expect(t, srv, 400, get, "/dns-query?name=a..b", jsonAccept, nil)
	c.expect(t, srv, 400, post, "/dns-query", dnsMessage, []byte{})
	c.expect(t, srv, 400, post, "/dns-query", dnsMessage, response)
	c.expect(t, srv, 415, post, "/dns-query", nil, wire)
	c.expect(t, srv, 415, post, "/dns-query", http.Header{"Content-Type": {"application/json"}}, wire)
	c.expect(t, srv, 413, post, "/dns-query", dnsMessage, make([]byte, maxDNSMessage+1))
	return wire
}

// openAPICache covers /cache/{name}: positive and negative entries, bad
// requests and credentials, flushes.
func openAPICache(t *testing.T, c *conformance, srv *httptest.Server, auth http.Header) {
	t.Helper()
	const get, del = http.MethodGet, http.MethodDelete
	c.expect(t, srv, 200, get, "/cache/www.example.test", auth, nil)
	c.expect(t, srv, 200, get, "/cache/nope.example.test", auth, nil)
	c.expect(t, srv, 200, get, "/cache/WWW.example.test.?type=AAAA&do=true&cd=1", auth, nil)
	c.expect(t, srv, 404, get, "/cache/never.example.test", auth, nil)
	c.expect(t, srv, 400, get, "/cache/a..b", auth, nil)
	c.expect(t, srv, 400, get, "/cache/www.example.test?type=BOGUS", auth, nil)
	c.expect(t, srv, 401, get, "/cache/www.example.test", nil, nil)
	c.expect(t, srv, 401, get, "/cache/www.example.test", http.Header{"Authorization": {"Bearer wrong"}}, nil)
	c.expect(t, srv, 401, del, "/cache/www.example.test", nil, nil)
	c.expect(t, srv, 401, del, "/cache/www.example.test", http.Header{"Authorization": {"Bearer wrong"}}, nil)
	crossSite := http.Header{"Authorization": auth["Authorization"], "Origin": {"https://evil.example"}}
	c.expect(t, srv, 403, del, "/cache/www.example.test", crossSite, nil)
	c.expect(t, srv, 400, del, "/cache/www.example.test?type=A", auth, nil)
	c.expect(t, srv, 400, del, "/cache/www.example.test?suffix=maybe", auth, nil)
	c.expect(t, srv, 400, del, "/cache/a..b", auth, nil)
	c.expect(t, srv, 200, del, "/cache/www.example.test", auth, nil)
	c.expect(t, srv, 200, del, "/cache/Example.Test?suffix=1", auth, nil)
}

// openAPIStatusPage covers the status page and its files: whole,
// unchanged, a range, a range outside the file.
func openAPIStatusPage(t *testing.T, c *conformance, srv *httptest.Server) {
	t.Helper()
	const get = http.MethodGet
	for _, path := range []string{"/", "/ui/app.js", "/ui/style.css"} {
		for _, method := range []string{get, http.MethodHead} {
			resp, _ := c.send(t, srv, method, path, nil, nil)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
				t.Errorf("%s %s: %d, ETag %q", method, path, resp.StatusCode, resp.Header.Get("ETag"))
			}
			c.expect(t, srv, 304, method, path, http.Header{"If-None-Match": {resp.Header.Get("ETag")}}, nil)
			c.expect(t, srv, 206, method, path, http.Header{"Range": {"bytes=0-9"}}, nil)
			c.expect(t, srv, 416, method, path, http.Header{"Range": {"bytes=10000000-"}}, nil)
		}
	}
}

// openAPIOutside covers what every route shares: a URI too long on every
// operation; then paths and methods outside the document.
func openAPIOutside(t *testing.T, c *conformance, srv *httptest.Server, auth http.Header, wire []byte) {
	t.Helper()
	const get, post, del = http.MethodGet, http.MethodPost, http.MethodDelete
	for _, op := range operations(c.doc) {
		method, path, _ := strings.Cut(op, " ")
		var h http.Header
		var body []byte
		switch method {
		case del:
			h = auth
		case post:
			h, body = dnsMessage, wire
		}
		target := fillPath(path) + "?pad=" + strings.Repeat("x", maxURI)
		c.expect(t, srv, 414, method, target, h, body)
		// DNS rebinding: a name that is not the server's, with the token.
		rebound := h.Clone()
		if rebound == nil {
			rebound = http.Header{}
		}
		rebound.Set("Host", "rebind.attacker.example")
		rebound.Set("Authorization", auth.Get("Authorization"))
		c.expect(t, srv, 421, method, fillPath(path), rebound, body)
	}

	// Paths and methods outside the document.
	c.expect(t, srv, 404, get, "/no/such/route", nil, nil)
	c.expect(t, srv, 404, get, "/ui/nope.js", nil, nil)
	for path, item := range c.doc.Paths.Map() {
		for _, method := range []string{get, http.MethodHead, post, http.MethodPut, http.MethodPatch, del, http.MethodOptions} {
			if item.GetOperation(method) == nil {
				c.expect(t, srv, 405, method, fillPath(path), nil, nil)
			}
		}
	}
}

// fillPath fills in the parameters of a documented path.
func fillPath(path string) string {
	return strings.NewReplacer("{name}", "www.example.test", "{id}", "0123456789ab").Replace(path)
}

// openAPIFailures covers the lookups that fail: a resolver that cannot be
// reached (503) and one that never answers (504).
func openAPIFailures(t *testing.T, c *conformance) {
	t.Helper()
	down := newMember(t, testFlags(nil), zoneResolver(t, newForwarder(t, deadAddr(t), time.Second)), nil)
	c.expect(t, down.srv, 503, http.MethodGet, "/lookup?name=www.example.net", nil, nil)
	c.expect(t, down.srv, 503, http.MethodGet, "/dns-query?name=ftp.example.net", http.Header{"Accept": {mimeDNSJSON}}, nil)
	c.expect(t, down.srv, 503, http.MethodGet, "/readyz", nil, nil)
	// As DNS over HTTPS, a failed lookup is a DNS answer: SERVFAIL.
	q := dohQuery(t, "mail.example.net.", dns.TypeA, 7, false)
	c.expect(t, down.srv, 200, http.MethodPost, "/dns-query", dnsMessage, q)

	slow := newMember(t, testFlags(nil), zoneResolver(t, newForwarder(t, blackhole(t), 2500*time.Millisecond)), nil)
	c.expect(t, slow.srv, 504, http.MethodGet, "/lookup?name=slow.example.net", nil, nil)
	c.expect(t, slow.srv, 504, http.MethodGet, "/dns-query?name=slow2.example.net&ct=application/dns-json", nil, nil)
}

// openAPIOutsideACL covers 403 on every resolving operation: loopback is
// outside the server's ACL.
func openAPIOutsideACL(t *testing.T, c *conformance, wire []byte) {
	t.Helper()
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), func(cfg *Config) { cfg.ACL = mustACL(t, "10.0.0.0/8") })
	c.expect(t, m.srv, 403, http.MethodGet, "/lookup?name=www.example.test", nil, nil)
	c.expect(t, m.srv, 403, http.MethodGet, "/dns-query?dns="+base64.RawURLEncoding.EncodeToString(wire), nil, nil)
	c.expect(t, m.srv, 403, http.MethodPost, "/dns-query", dnsMessage, wire)
}

// openAPIRateLimit covers 429 on every rate-limited operation.
func openAPIRateLimit(t *testing.T, c *conformance, wire []byte) {
	t.Helper()
	lim := newMember(t, testFlags(nil), zoneResolver(t, nil), func(cfg *Config) { cfg.Rate, cfg.Burst = 0.001, 1 })
	srv := lim.srv
	c.expect(t, srv, 200, http.MethodGet, "/lookup?name=www.example.test", nil, nil)
	c.expect(t, srv, 429, http.MethodGet, "/lookup?name=www.example.test", nil, nil)
	c.expect(t, srv, 429, http.MethodGet, "/dns-query?dns="+base64.RawURLEncoding.EncodeToString(wire), nil, nil)
	c.expect(t, srv, 429, http.MethodPost, "/dns-query", dnsMessage, wire)
}
