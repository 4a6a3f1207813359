package api

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/logbuf"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// noAddress fails when body names addr or its port.
func noAddress(t *testing.T, what string, body []byte, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		_, port, _ := net.SplitHostPort(a)
		for _, leak := range []string{a, port} {
			if bytes.Contains(body, []byte(leak)) {
				t.Errorf("%s: the body names %q: %s", what, leak, body)
			}
		}
	}
}

// TestErrorsNameNoAddress: a lookup whose upstream is down, /readyz, and
// the cache routes with every shard down answer without naming the
// upstream's or the shards' addresses; the log names them.
func TestErrorsNameNoAddress(t *testing.T) {
	dead := deadAddr(t)
	var log logbuf.Buffer
	m := newMember(t, testFlags(nil), zoneResolver(t, newForwarder(t, dead, time.Second)), func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&log, nil))
	})
	for _, c := range []struct {
		target string
		header http.Header
		code   int
	}{
		{"/lookup?name=www.example.net", nil, http.StatusServiceUnavailable},
		{"/dns-query?name=ftp.example.net", http.Header{"Accept": {mimeDNSJSON}}, http.StatusServiceUnavailable},
		{"/readyz", nil, http.StatusServiceUnavailable},
	} {
		resp, body := do(t, m.srv, http.MethodGet, c.target, c.header, nil)
		mustJSONError(t, c.target, resp, body, c.code)
		noAddress(t, c.target, body, dead)
	}
	if !strings.Contains(log.String(), dead) {
		t.Errorf("the log does not name the upstream %s:\n%s", dead, log.String())
	}

	shards := redistest.StartN(t, 2)
	var log2 logbuf.Buffer
	r := newMember(t, testFlags(shards), zoneResolver(t, nil), func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&log2, nil))
	})
	lookupAll(t, r, []string{"www.example.test"}, "type=A")
	addrs := redistest.Addrs(shards)
	// The shard holding the entry down, before the ring notices: the
	// errors are dials to its address.
	key := "dns:{www.example.test.}:A:IN"
	holder := holderOf(t, shards, key)
	for _, s := range shards {
		if s.Addr == holder {
			s.Kill()
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		resp, body := do(t, r.srv, method, "/cache/www.example.test", testAuth, nil)
		// 503 until the ring drops the shard; then a miss, or a flush of
		// nothing, on the shard that took its keys.
		if c := resp.StatusCode; c != http.StatusServiceUnavailable && c != http.StatusNotFound && c != http.StatusOK {
			t.Errorf("%s /cache with its shard down: %d %s", method, c, body)
		}
		noAddress(t, method+" /cache with its shard down", body, addrs...)
	}
	for _, s := range shards {
		s.Kill()
	}
	for _, c := range []struct{ method, target string }{
		{http.MethodGet, "/cache/www.example.test"},
		{http.MethodDelete, "/cache/www.example.test"},
		{http.MethodDelete, "/cache/example.test?suffix=1"},
		{http.MethodGet, "/readyz"},
	} {
		waitUntil(t, 10*time.Second, c.method+" "+c.target+" with the shards down answers 503", func() bool {
			resp, body := do(t, r.srv, c.method, c.target, testAuth, nil)
			noAddress(t, c.method+" "+c.target, body, addrs...)
			return resp.StatusCode == http.StatusServiceUnavailable
		})
	}
	if !strings.Contains(log2.String(), addrs[0]) && !strings.Contains(log2.String(), addrs[1]) {
		t.Errorf("the log names no shard:\n%s", log2.String())
	}
}

// TestLoadToken: -token wins; else the file is read, or made; a file that
// cannot be written still gives a (random, unknown) token; a bad file is
// an error.
func TestLoadToken(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	f := Flags{Token: "given-token-0123456789", TokenFile: filepath.Join(dir, "unused")}
	if tok, err := f.LoadToken(discard); err != nil || tok != "given-token-0123456789" {
		t.Errorf("-token: %q %v", tok, err)
	}
	if _, err := os.Stat(f.TokenFile); err == nil {
		t.Error("-token given, yet a token file was written")
	}
	f = Flags{TokenFile: filepath.Join(dir, "made", "token")}
	tok, err := f.LoadToken(discard)
	if b, _ := os.ReadFile(f.TokenFile); err != nil || string(b) != tok+"\n" {
		t.Errorf("made: %v, file %q", err, b)
	}
	// Nothing can be made under /proc, by root either: as on a read-only
	// root file system.
	var log bytes.Buffer
	f = Flags{TokenFile: "/proc/self/shardns-test/token"}
	tok1, err1 := f.LoadToken(slog.New(slog.NewTextHandler(&log, nil)))
	tok2, err2 := f.LoadToken(discard)
	if err1 != nil || err2 != nil || tok1 == "" || tok1 == tok2 || !strings.Contains(log.String(), "refused") {
		t.Errorf("unwritable file: %q %v, %q %v; log %s", tok1, err1, tok2, err2, log.String())
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("not a token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := (&Flags{TokenFile: bad}).LoadToken(discard); err == nil {
		t.Errorf("a bad token file: %q, no error", tok)
	}
}
