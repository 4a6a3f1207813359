package api

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shardns/shardns/dnsd/acl"
)

func mustACL(t testing.TB, list string) *acl.ACL {
	t.Helper()
	a, err := acl.Parse(list)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// serveRecorded serves one request built by httptest from remote with the
// given Host and headers.
func serveRecorded(t *testing.T, h http.Handler, method, target, remote, host string, header http.Header, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	req.RemoteAddr, req.Host = remote, host
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func recordedJSONError(t *testing.T, what string, rec *httptest.ResponseRecorder, code int) {
	t.Helper()
	mustJSONError(t, what, rec.Result(), rec.Body.Bytes(), code)
}

// TestTokenNeededFromEveryClient: DELETE /cache/... and GET /cache/...
// need the token from loopback clients as from the others; without it, or
// with a wrong one, 401 with a Bearer challenge, and the cache is left
// alone.
func TestTokenNeededFromEveryClient(t *testing.T) {
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), nil)
	lookupAll(t, m, []string{"www.example.test"}, "type=A")
	for _, remote := range []string{"127.0.0.1:40000", "[::1]:40000", "[::ffff:127.0.0.1]:40000", "192.0.2.7:40000"} {
		for _, c := range []struct{ what, auth string }{
			{"no header", ""},
			{"another scheme", "Basic czNjcmV0"},
			{"empty token", "Bearer "},
			{"wrong token", "Bearer s3cret-test-toke"},
			{"longer token", "Bearer " + testToken + "2"},
		} {
			for _, method := range []string{http.MethodDelete, http.MethodGet} {
				h := http.Header{}
				if c.auth != "" {
					h.Set("Authorization", c.auth)
				}
				rec := serveRecorded(t, m.h, method, "/cache/www.example.test", remote, "127.0.0.1:8080", h, "")
				what := method + " from " + remote + ", " + c.what
				recordedJSONError(t, what, rec, http.StatusUnauthorized)
				if ch := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") {
					t.Errorf("%s: WWW-Authenticate %q", what, ch)
				}
				if strings.Contains(rec.Body.String(), "192.0.2.1") {
					t.Errorf("%s: the entry was shown: %s", what, rec.Body)
				}
			}
		}
	}
	if m.fe.L1.Len() != 1 {
		t.Fatalf("a refused DELETE changed the cache: L1 holds %d", m.fe.L1.Len())
	}
	rec := serveRecorded(t, m.h, http.MethodGet, "/cache/www.example.test", "127.0.0.1:1", "localhost", testAuth, "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "192.0.2.1") {
		t.Errorf("GET with the token: %d %s", rec.Code, rec.Body)
	}
	for _, auth := range []string{"Bearer " + testToken, "bearer  " + testToken + " "} {
		rec := serveRecorded(t, m.h, http.MethodDelete, "/cache/www.example.test", "192.0.2.7:1", "localhost", http.Header{"Authorization": {auth}}, "")
		if rec.Code != http.StatusOK {
			t.Errorf("%q: %d %s", auth, rec.Code, rec.Body)
		}
	}
	if m.fe.L1.Len() != 0 {
		t.Errorf("DELETE with the token left %d entries", m.fe.L1.Len())
	}
}

// TestNoTokenRefusesEveryone: a server built without a token takes no
// token at all, not even an empty one.
func TestNoTokenRefusesEveryone(t *testing.T) {
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), func(c *Config) { c.Token = "" })
	for _, auth := range []string{"", "Bearer ", "Bearer x", `Bearer ""`} {
		rec := serveRecorded(t, m.h, http.MethodDelete, "/cache/www.example.test", "127.0.0.1:1", "localhost", http.Header{"Authorization": {auth}}, "")
		recordedJSONError(t, "no server token, "+auth, rec, http.StatusUnauthorized)
	}
}

// TestJobsNeedToken: POST and DELETE /jobs need the token from loopback
// clients too.
func TestJobsNeedToken(t *testing.T) {
	srv, q := jobsServer(t)
	for _, c := range []struct{ method, path, ctype, body string }{
		{http.MethodPost, "/jobs", "text/csv", "a.example\n"},
		{http.MethodPost, "/jobs", "application/json", `{"names":["a.example"]}`},
		{http.MethodDelete, "/jobs/0123456789ab", "", ""},
	} {
		for _, tok := range []string{"", "wrong"} {
			code, body := send(t, srv, c.method, c.path, c.ctype, tok, strings.NewReader(c.body))
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s from loopback, token %q: %d %s, want 401", c.method, c.path, tok, code, body)
			}
		}
	}
	if n := len(queued(t, q)); n != 0 {
		t.Errorf("refused POSTs queued %d tasks", n)
	}
}

// TestHostChecked: a Host the server does not answer to gets 421 before
// any handler runs (a DELETE with the token leaves the cache alone), on
// every route.
func TestHostChecked(t *testing.T) {
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), func(c *Config) {
		c.Listen, c.Hosts = "192.0.2.80:8080", []string{"dns.example.net", "198.51.100.7", "[2001:db8::7]"}
	})
	lookupAll(t, m, []string{"www.example.test"}, "type=A")
	refused := []string{
		"rebind.attacker.example", "rebind.attacker.example:8080", "localhost.attacker.example", "attacker.example.localhost",
		"192.0.2.81:8080", "10.0.0.1", "[2001:db8::8]:8080", "dns.example.net.evil", "sub.dns.example.net",
		"", "::1", "[::1", "[::1]x", "localhost:http", "localhost:99999", "[fe80::1%25eth0]:80",
	}
	for _, host := range refused {
		for _, path := range []string{"/cache/www.example.test", "/lookup?name=www.example.test", "/healthz", "/", "/jobs", "/nope"} {
			method := http.MethodGet
			if strings.HasPrefix(path, "/cache") {
				method = http.MethodDelete
			}
			rec := serveRecorded(t, m.h, method, path, "127.0.0.1:1", host, testAuth, "")
			recordedJSONError(t, "Host "+host+" "+path, rec, http.StatusMisdirectedRequest)
		}
	}
	if m.fe.L1.Len() != 1 {
		t.Fatalf("a DELETE with a foreign Host reached the cache: L1 holds %d", m.fe.L1.Len())
	}
	for _, host := range []string{
		"localhost", "LOCALHOST:8080", "localhost.", "127.0.0.1", "127.0.0.1:9", "127.1.2.3:8080", "[::1]", "[::1]:8080",
		"192.0.2.80", "192.0.2.80:8080", "[::ffff:192.0.2.80]:8080", "dns.example.net", "DNS.Example.NET.:443",
		"198.51.100.7:8080", "[2001:db8::7]:8080",
	} {
		if rec := serveRecorded(t, m.h, http.MethodGet, "/healthz", "127.0.0.1:1", host, nil, ""); rec.Code != http.StatusOK {
			t.Errorf("Host %q: %d %s", host, rec.Code, rec.Body)
		}
	}
}

// TestHostWildcardListen: listening on every address, any IP address
// literal is a Host the server answers to, names only if listed.
func TestHostWildcardListen(t *testing.T) {
	for _, listen := range []string{":8080", "0.0.0.0:8080", "[::]:8080", ""} {
		p := newHostPolicy(listen, []string{"dns.example.net"})
		for host, want := range map[string]bool{
			"10.1.2.3:8080": true, "203.0.113.9": true, "[2001:db8::1]:8080": true, "localhost": true, "dns.example.net:8080": true,
			"rebind.attacker.example": false, "10.1.2.3.nip.io": false, "": false,
		} {
			if got := p.allowsHost(host); got != want {
				t.Errorf("listen %q, Host %q: %v, want %v", listen, host, got, want)
			}
		}
	}
	// A listen address given as a name allows that name.
	if p := newHostPolicy("api.internal:8080", nil); !p.allowsHost("API.internal:8080") || p.allowsHost("10.0.0.1") {
		t.Error("listen on a name: the name must be allowed, other addresses not")
	}
}

// TestOriginOnMutatingCalls: a call that changes state from a page of
// another origin gets 403 even with the token; the server's own page, a
// named host, and clients that send no Origin (curl) are served.
func TestOriginOnMutatingCalls(t *testing.T) {
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), func(c *Config) {
		c.Listen, c.Hosts = ":8080", []string{"dns.example.net"}
	})
	for _, c := range []struct {
		host, origin string
		code         int
	}{
		{"127.0.0.1:8080", "https://evil.example", http.StatusForbidden},
		{"127.0.0.1:8080", "null", http.StatusForbidden},
		{"127.0.0.1:8080", "http://127.0.0.1.evil.example:8080", http.StatusForbidden},
		{"10.0.0.5:8080", "http://203.0.113.66", http.StatusForbidden}, // an attacker's page on an address of its own
		{"10.0.0.5:8080", "file://", http.StatusForbidden},
		{"10.0.0.5:8080", "http://10.0.0.5:8080/path", http.StatusForbidden},
		{"127.0.0.1:8080", "http://127.0.0.1:8080", http.StatusOK},
		{"10.0.0.5:8080", "http://10.0.0.5:8080", http.StatusOK}, // the server's own status page
		{"dns.example.net", "https://dns.example.net", http.StatusOK},
		{"10.0.0.5:8080", "http://localhost:3000", http.StatusOK},
		{"127.0.0.1:8080", "", http.StatusOK},
	} {
		h := http.Header{"Authorization": testAuth["Authorization"]}
		if c.origin != "" {
			h.Set("Origin", c.origin)
		}
		rec := serveRecorded(t, m.h, http.MethodDelete, "/cache/www.example.test", "127.0.0.1:1", c.host, h, "")
		if rec.Code != c.code {
			t.Errorf("Host %s, Origin %q: %d %s, want %d", c.host, c.origin, rec.Code, rec.Body, c.code)
		}
		var e errorBody
		if c.code != http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &e) != nil {
			t.Errorf("Origin %q: body not the JSON error: %s", c.origin, rec.Body)
		}
	}
	// Two Origin headers: refused.
	h := http.Header{"Authorization": testAuth["Authorization"], "Origin": {"http://127.0.0.1:8080", "https://evil.example"}}
	recordedJSONError(t, "two Origins", serveRecorded(t, m.h, http.MethodDelete, "/cache/www.example.test", "127.0.0.1:1", "127.0.0.1:8080", h, ""), http.StatusForbidden)
	// Reads do not change state: an Origin does not matter to them.
	h = http.Header{"Origin": {"https://evil.example"}}
	if rec := serveRecorded(t, m.h, http.MethodGet, "/lookup?name=www.example.test", "127.0.0.1:1", "127.0.0.1:8080", h, ""); rec.Code != http.StatusOK {
		t.Errorf("lookup with a foreign Origin: %d %s", rec.Code, rec.Body)
	}
}

// TestResolvingNeedsACL: /lookup and /dns-query answer only clients in the
// ACL; the default ACL takes loopback and private ranges, not the rest.
func TestResolvingNeedsACL(t *testing.T) {
	wire := dohQuery(t, "www.example.test.", 1, 7, false)
	paths := []struct{ method, target, ctype, body string }{
		{http.MethodGet, "/lookup?name=www.example.test", "", ""},
		{http.MethodGet, "/dns-query?name=www.example.test&ct=application/dns-json", "", ""},
		{http.MethodGet, "/dns-query?dns=" + b64(wire), "", ""},
		{http.MethodPost, "/dns-query", mimeDNSMessage, string(wire)},
	}
	only10 := newMember(t, testFlags(nil), zoneResolver(t, nil), func(c *Config) { c.ACL = mustACL(t, "10.0.0.0/8") })
	def := newMember(t, testFlags(nil), zoneResolver(t, nil), nil)
	for _, c := range []struct {
		m      *member
		remote string
		code   int
	}{
		{only10, "127.0.0.1:1", http.StatusForbidden},
		{only10, "[::1]:1", http.StatusForbidden},
		{only10, "192.168.1.1:1", http.StatusForbidden},
		{only10, "garbage", http.StatusForbidden},
		{only10, "10.9.8.7:1", http.StatusOK},
		{only10, "[::ffff:10.9.8.7]:1", http.StatusOK},
		{def, "203.0.113.9:1", http.StatusForbidden},
		{def, "[2001:db8::1]:1", http.StatusForbidden},
		{def, "127.0.0.1:1", http.StatusOK},
		{def, "192.168.1.1:1", http.StatusOK},
		{def, "100.64.0.1:1", http.StatusOK},
		{def, "[fd00::1]:1", http.StatusOK},
		{def, "[fe80::1]:1", http.StatusOK},
	} {
		for _, p := range paths {
			rec := serveRecorded(t, c.m.h, p.method, p.target, c.remote, "localhost", http.Header{"Content-Type": {p.ctype}}, p.body)
			what := p.method + " " + p.target + " from " + c.remote
			if c.code == http.StatusOK {
				if rec.Code != http.StatusOK {
					t.Errorf("%s: %d %s", what, rec.Code, rec.Body)
				}
				continue
			}
			recordedJSONError(t, what, rec, c.code)
		}
	}
	// The other routes do not resolve: no ACL.
	if rec := serveRecorded(t, only10.h, http.MethodGet, "/healthz", "127.0.0.1:1", "localhost", nil, ""); rec.Code != http.StatusOK {
		t.Errorf("/healthz from outside the ACL: %d", rec.Code)
	}
}

// TestFlagsDefaults: the rate limit is on by default, at DefaultRate, and
// -token-file defaults to a file under the user's configuration folder.
func TestFlagsDefaults(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	var f Flags
	fs := newFlagSet()
	f.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if f.Rate != DefaultRate || DefaultRate <= 0 {
		t.Errorf("-http-rate default %v", f.Rate)
	}
	if f.TokenFile != "/cfg/shardns/token" {
		t.Errorf("-token-file default %q", f.TokenFile)
	}
	for _, name := range []string{"token", "token-file", "http-host", "http-rate"} {
		if fs.Lookup(name) == nil {
			t.Errorf("-%s not defined", name)
		}
	}
	if err := fs.Parse([]string{"-http-rate", "-1"}); err != nil || f.Check() == nil {
		t.Errorf("a negative -http-rate passed Check")
	}
	f.Rate = 1
	for _, bad := range []string{"has space", "new\nline", "quote\""} {
		f.Token = bad
		if f.Check() == nil {
			t.Errorf("-token %q passed Check", bad)
		}
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
