package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/nsdtest"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// curlResult is what curl got: the status, headers and body.
type curlResult struct {
	Code   int
	Header string // the response headers as curl printed them
	Body   string
}

// curlDo runs the real curl with args (method, headers, data) against url
// and returns the status, headers and body, whatever the status.
func curlDo(t *testing.T, url string, args ...string) curlResult {
	t.Helper()
	bin, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl not found (apt-get install curl)")
		}
		t.Skip("curl not found: apt-get install curl")
	}
	headers := filepath.Join(t.TempDir(), "headers")
	all := append([]string{"-sS", "--max-time", "10", "-D", headers, "-w", "\n%{http_code}"}, args...)
	all = append(all, url)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, all...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", all, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	code, err := strconv.Atoi(s[i+1:])
	if err != nil {
		t.Fatalf("curl %v: no status in %q", all, s)
	}
	h, err := os.ReadFile(headers)
	if err != nil {
		t.Fatal(err)
	}
	return curlResult{Code: code, Header: string(h), Body: s[:i]}
}

// jsonError checks that r is a JSON error answer with status code.
func jsonError(t *testing.T, what string, r curlResult, code int) {
	t.Helper()
	var e struct{ Error string }
	if r.Code != code || json.Unmarshal([]byte(r.Body), &e) != nil || e.Error == "" {
		t.Errorf("%s: %d %q, want %d with a JSON error", what, r.Code, r.Body, code)
	}
}

// restFleet is a cacheapi over one Redis shard, a work queue with a
// resolverd worker, and resolverd forwarding to an NSD serving the test
// zone.
type restFleet struct {
	api       *proc
	url       string // http://host:port of the cacheapi
	configDir string // XDG_CONFIG_HOME of the cacheapi and of `cacheapi warm`
	shard     *redistest.Server
	queue     *redistest.Server
	grpc      string // resolverd's address
}

func startRESTFleet(t *testing.T, apiArgs ...string) *restFleet {
	t.Helper()
	nsd := nsdtest.Start(t, map[string]string{zoneName: testZone()})
	f := &restFleet{shard: redistest.Start(t), queue: redistest.Start(t), configDir: t.TempDir()}
	grpc := port(t)
	f.grpc = grpc
	r := start(t, "resolverd", nil, "-listen", grpc, "-upstream", nsd.Addr,
		"-redis", f.shard.Addr, "-queue-redis", f.queue.Addr, "-workers", "2")
	waitTCP(t, r, grpc)
	addr := port(t)
	args := append([]string{"-listen", addr, "-redis", f.shard.Addr, "-resolver", grpc, "-queue-redis", f.queue.Addr}, apiArgs...)
	f.api = start(t, "cacheapi", []string{"XDG_CONFIG_HOME=" + f.configDir}, args...)
	waitTCP(t, f.api, addr)
	f.url = "http://" + addr
	return f
}

// tokenFile is where cacheapi keeps its token by default.
func (f *restFleet) tokenFile() string { return filepath.Join(f.configDir, "shardns", "token") }

// token reads the token cacheapi wrote.
func (f *restFleet) token(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(f.tokenFile())
	if err != nil {
		t.Fatalf("the token file: %v\n%s", err, f.api.Out.String())
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 32 {
		t.Fatalf("token file holds %d characters, want a long random token", len(tok))
	}
	return tok
}

// TestRESTTokenFileMadeAtStart: with no -token, cacheapi makes a token,
// writes it to the default token file (mode 0600 in a 0700 folder), logs
// where it is and never the token; curl with it can DELETE, curl without
// it cannot even read the cache; `cacheapi warm` finds it by itself.
func TestRESTTokenFileMadeAtStart(t *testing.T) {
	f := startRESTFleet(t)
	tok := f.token(t)
	st, err := os.Stat(f.tokenFile())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", st.Mode().Perm())
	}
	if dir, err := os.Stat(filepath.Dir(f.tokenFile())); err != nil || dir.Mode().Perm() != 0o700 {
		t.Errorf("token folder: %v %v, want mode 0700", dir.Mode().Perm(), err)
	}
	if log := f.api.Out.String(); !strings.Contains(log, f.tokenFile()) || strings.Contains(log, tok) {
		t.Errorf("the log must name the token file and never the token:\n%s", log)
	}

	if r := curlDo(t, f.url+"/lookup?name=www.shardns.test&type=A"); r.Code != 200 {
		t.Fatalf("lookup: %d %s", r.Code, r.Body)
	}
	noToken := curlDo(t, f.url+"/cache/www.shardns.test?type=A")
	jsonError(t, "GET /cache without a token", noToken, 401)
	if !strings.Contains(strings.ToLower(noToken.Header), "www-authenticate: bearer") {
		t.Errorf("401 without a WWW-Authenticate: Bearer challenge:\n%s", noToken.Header)
	}
	if strings.Contains(noToken.Body, "192.0.2.10") {
		t.Errorf("GET /cache without a token showed the entry: %s", noToken.Body)
	}
	auth := "Authorization: Bearer " + tok
	if r := curlDo(t, f.url+"/cache/www.shardns.test?type=A", "-H", auth); r.Code != 200 || !strings.Contains(r.Body, "192.0.2.10") {
		t.Fatalf("GET /cache with the token: %d %s", r.Code, r.Body)
	}
	jsonError(t, "DELETE without a token, from loopback", curlDo(t, f.url+"/cache/www.shardns.test", "-X", "DELETE"), 401)
	if r := curlDo(t, f.url+"/cache/www.shardns.test", "-X", "DELETE", "-H", auth); r.Code != 200 || !strings.Contains(r.Body, `"deleted":1`) {
		t.Errorf("DELETE with the token from the file: %d %s", r.Code, r.Body)
	}
	jsonError(t, "GET /cache after the flush", curlDo(t, f.url+"/cache/www.shardns.test?type=A", "-H", auth), 404)

	// A restart keeps the token: the file is read, not replaced.
	f.api.Stop(t)
	addr := strings.TrimPrefix(f.url, "http://")
	again := start(t, "cacheapi", []string{"XDG_CONFIG_HOME=" + f.configDir}, "-listen", addr, "-redis", f.shard.Addr, "-resolver", f.grpc, "-queue-redis", f.queue.Addr)
	waitTCP(t, again, addr)
	if got := f.token(t); got != tok {
		t.Errorf("a restart replaced the token")
	}
	f.api = again

	// `cacheapi warm` with no -token reads the same default file.
	csv := filepath.Join(t.TempDir(), "names.csv")
	if err := os.WriteFile(csv, []byte("www.shardns.test\nmail.shardns.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	warm := exec.CommandContext(ctx, filepath.Join(binDir, "cacheapi"), "warm", "-api", f.url, "-every", "50ms", csv)
	warm.Env = append(os.Environ(), "XDG_CONFIG_HOME="+f.configDir)
	out, err := warm.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2 names") {
		t.Errorf("cacheapi warm with the token from the default file: %v\n%s", err, out)
	}
	// Without the file it is refused, and says so.
	warm = exec.CommandContext(ctx, filepath.Join(binDir, "cacheapi"), "warm", "-api", f.url, "-every", "50ms", csv)
	warm.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	if out, err := warm.CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("cacheapi warm with no token: %v\n%s", err, out)
	}
}

// TestRESTCrossSiteAndRebinding: what a web page in a browser can send is
// refused: a cross-site POST /jobs with text/plain (a "simple" request, no
// preflight), and a DELETE through a rebound name.
func TestRESTCrossSiteAndRebinding(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "secrets", "api-token")
	f := startRESTFleet(t, "-token-file", tokenFile)
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatalf("-token-file: %v", err)
	}
	auth := "Authorization: Bearer " + strings.TrimSpace(string(b))
	pending := func() int64 { return f.queue.Client().LLen(t.Context(), "q:{warm}:pending").Val() }

	crossSite := []string{"-X", "POST", "-H", "Origin: https://evil.example", "-H", "Content-Type: text/plain", "--data-binary", "www.shardns.test\n"}
	if r := curlDo(t, f.url+"/jobs", crossSite...); r.Code/100 == 2 || (r.Code != 401 && r.Code != 403) {
		t.Errorf("cross-site POST /jobs with text/plain and no token: %d %s, want 401 or 403", r.Code, r.Body)
	}
	jsonError(t, "POST /jobs text/plain with the token", curlDo(t, f.url+"/jobs", "-X", "POST", "-H", auth, "-H", "Content-Type: text/plain", "--data-binary", "www.shardns.test\n"), 415)
	jsonError(t, "cross-site POST /jobs with the token", curlDo(t, f.url+"/jobs", append(crossSite, "-H", auth, "-H", "Content-Type: text/csv")...), 403)
	jsonError(t, "multipart POST /jobs with the token", curlDo(t, f.url+"/jobs", "-X", "POST", "-H", auth, "-F", "file=@/dev/null"), 415)
	if n := pending(); n != 0 {
		t.Errorf("refused POSTs queued %d tasks", n)
	}
	if r := curlDo(t, f.url+"/jobs", "-X", "POST", "-H", auth, "-H", "Content-Type: text/csv", "-H", "Origin: "+f.url, "--data-binary", "mail.shardns.test\n"); r.Code != 202 {
		t.Errorf("same-origin POST /jobs text/csv with the token: %d %s", r.Code, r.Body)
	}

	// DNS rebinding: the page's name now points at 127.0.0.1, the browser
	// sends its own name as Host.
	if r := curlDo(t, f.url+"/lookup?name=www.shardns.test&type=A"); r.Code != 200 {
		t.Fatalf("lookup: %d %s", r.Code, r.Body)
	}
	for _, args := range [][]string{
		{"-X", "DELETE", "-H", "Host: rebind.attacker.example", "-H", auth},
		{"-X", "DELETE", "-H", "Host: rebind.attacker.example:" + portOf(f.url), "-H", auth},
		{"-X", "DELETE", "-H", "Host: localhost.attacker.example", "-H", auth},
	} {
		jsonError(t, "DELETE with "+args[3], curlDo(t, f.url+"/cache/www.shardns.test", args...), 421)
	}
	jsonError(t, "GET /lookup through a rebound name", curlDo(t, f.url+"/lookup?name=www.shardns.test", "-H", "Host: rebind.attacker.example"), 421)
	if r := curlDo(t, f.url+"/cache/www.shardns.test?type=A", "-H", auth); r.Code != 200 || !strings.Contains(r.Body, "192.0.2.10") {
		t.Errorf("after the rebound DELETEs the entry must still be there: %d %s", r.Code, r.Body)
	}
	if keys := f.shard.Client().Keys(t.Context(), "*").Val(); len(keys) == 0 {
		t.Errorf("the shard lost the entry")
	}
	// localhost names are served.
	for _, host := range []string{"localhost", "localhost:" + portOf(f.url), "[::1]:" + portOf(f.url)} {
		if r := curlDo(t, f.url+"/healthz", "-H", "Host: "+host); r.Code != 200 {
			t.Errorf("Host %s: %d %s", host, r.Code, r.Body)
		}
	}
}

func portOf(url string) string { return url[strings.LastIndexByte(url, ':')+1:] }

// TestRESTLookupACLAndRateLimit: /lookup and /dns-query answer only the
// clients -allow names (loopback is outside 10.0.0.0/8), and a client over
// -http-rate gets 429 with Retry-After.
func TestRESTLookupACLAndRateLimit(t *testing.T) {
	f := startRESTFleet(t, "-allow", "10.0.0.0/8")
	jsonError(t, "lookup from outside -allow", curlDo(t, f.url+"/lookup?name=www.shardns.test"), 403)
	jsonError(t, "dns-json from outside -allow", curlDo(t, f.url+"/dns-query?name=www.shardns.test", "-H", "Accept: application/dns-json"), 403)
	jsonError(t, "DoH POST from outside -allow", curlDo(t, f.url+"/dns-query", "-X", "POST", "-H", "Content-Type: application/dns-message", "--data-binary", "x"), 403)
	if r := curlDo(t, f.url+"/healthz"); r.Code != 200 {
		t.Errorf("healthz is not an ACL'd route: %d", r.Code)
	}

	g := startRESTFleet(t, "-http-rate", "0.01")
	if r := curlDo(t, g.url+"/lookup?name=www.shardns.test"); r.Code != 200 {
		t.Fatalf("first lookup: %d %s", r.Code, r.Body)
	}
	r := curlDo(t, g.url+"/lookup?name=www.shardns.test")
	jsonError(t, "second lookup over -http-rate", r, 429)
	if !strings.Contains(strings.ToLower(r.Header), "retry-after: ") {
		t.Errorf("429 without Retry-After:\n%s", r.Header)
	}
}

// TestRESTErrorsNameNoAddress: a lookup whose resolver is down, and
// /readyz, say so without naming the resolver's or Redis's address (the
// log does).
func TestRESTErrorsNameNoAddress(t *testing.T) {
	shard := redistest.Start(t)
	deadResolver := port(t) // nothing listens there
	addr := port(t)
	api := start(t, "cacheapi", []string{"XDG_CONFIG_HOME=" + t.TempDir()}, "-listen", addr, "-redis", shard.Addr, "-resolver", deadResolver, "-l1", "0")
	waitTCP(t, api, addr)
	_, resolverPort, _ := strings.Cut(deadResolver, ":")
	_, shardPort, _ := strings.Cut(shard.Addr, ":")
	check := func(what string, r curlResult, code int) {
		t.Helper()
		jsonError(t, what, r, code)
		for _, leak := range []string{deadResolver, resolverPort, shard.Addr, shardPort, "127.0.0.1"} {
			if strings.Contains(r.Body, leak) {
				t.Errorf("%s: the body names %q: %s", what, leak, r.Body)
			}
		}
	}
	check("lookup with the resolver down", curlDo(t, "http://"+addr+"/lookup?name=www.shardns.test"), 503)
	check("dns-json with the resolver down", curlDo(t, "http://"+addr+"/dns-query?name=www.shardns.test&ct=application/dns-json"), 503)
	check("readyz with the resolver down", curlDo(t, "http://"+addr+"/readyz"), 503)
	if !strings.Contains(api.Out.String(), deadResolver) {
		t.Errorf("the log should name the resolver that failed:\n%s", api.Out.String())
	}

	// dnsd -http, all-in-one, with its upstream down.
	dnsAddr, httpAddr := port(t), port(t)
	d := start(t, "dnsd", []string{"XDG_CONFIG_HOME=" + t.TempDir()}, "-listen", dnsAddr, "-upstream", deadResolver, "-http", httpAddr)
	waitTCP(t, d, httpAddr)
	r := curlDo(t, "http://"+httpAddr+"/lookup?name=www.example.org")
	if r.Code != 503 && r.Code != 504 {
		t.Errorf("dnsd -http lookup with the upstream down: %d %s", r.Code, r.Body)
	}
	for _, leak := range []string{deadResolver, resolverPort} {
		if strings.Contains(r.Body, leak) {
			t.Errorf("dnsd -http error body names %q: %s", leak, r.Body)
		}
	}
}

// TestDnsdHTTPTokenAndACL: dnsd -http takes -token-file and obeys -allow
// for /lookup as for DNS.
func TestDnsdHTTPTokenAndACL(t *testing.T) {
	nsd := nsdtest.Start(t, map[string]string{zoneName: testZone()})
	dnsAddr, httpAddr := port(t), port(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("operator-chosen-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := start(t, "dnsd", nil, "-listen", dnsAddr, "-upstream", nsd.Addr, "-http", httpAddr, "-token-file", tokenFile)
	waitDNS(t, d, dnsAddr, zoneName)
	url := "http://" + httpAddr
	if r := curlDo(t, url+"/lookup?name=www.shardns.test"); r.Code != 200 {
		t.Fatalf("lookup: %d %s", r.Code, r.Body)
	}
	jsonError(t, "dnsd DELETE without a token", curlDo(t, url+"/cache/www.shardns.test", "-X", "DELETE"), 401)
	jsonError(t, "dnsd DELETE rebound", curlDo(t, url+"/cache/www.shardns.test", "-X", "DELETE", "-H", "Host: rebind.attacker.example",
		"-H", "Authorization: Bearer operator-chosen-token-0123456789"), 421)
	if r := curlDo(t, url+"/cache/www.shardns.test", "-X", "DELETE", "-H", "Authorization: Bearer operator-chosen-token-0123456789"); r.Code != 200 || !strings.Contains(r.Body, `"deleted":1`) {
		t.Errorf("dnsd DELETE with the mounted token: %d %s", r.Code, r.Body)
	}
	if b, _ := os.ReadFile(tokenFile); !bytes.Equal(b, []byte("operator-chosen-token-0123456789\n")) {
		t.Errorf("dnsd rewrote an operator's token file: %q", b)
	}

	dnsAddr2, httpAddr2 := port(t), port(t)
	d2 := start(t, "dnsd", []string{"XDG_CONFIG_HOME=" + t.TempDir()}, "-listen", dnsAddr2, "-upstream", nsd.Addr, "-http", httpAddr2, "-allow", "10.0.0.0/8")
	waitTCP(t, d2, httpAddr2)
	jsonError(t, "dnsd -http lookup from outside -allow", curlDo(t, "http://"+httpAddr2+"/lookup?name=www.shardns.test"), 403)
}
