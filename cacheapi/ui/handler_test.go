package ui_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/cacheapi/ui"
)

// fetch sends one request to srv and returns the response with its body.
func fetch(t testing.TB, srv *httptest.Server, method, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
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
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// assets are the paths the page is made of, with their content types and
// a string each must hold.
var assets = []struct{ path, ctype, holds string }{
	{"/", "text/html; charset=utf-8", `<script type="module" src="ui/app.js">`},
	{"/ui/app.js", "text/javascript; charset=utf-8", `getJSON("stats")`},
	{"/ui/style.css", "text/css; charset=utf-8", ".cards"},
}

func TestHandlerServesAssets(t *testing.T) {
	srv := httptest.NewServer(ui.Handler())
	t.Cleanup(srv.Close)
	for _, a := range assets {
		resp, body := fetch(t, srv, http.MethodGet, a.path, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", a.path, resp.StatusCode)
		}
		h := resp.Header
		if got := h.Get("Content-Type"); got != a.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", a.path, got, a.ctype)
		}
		if !strings.Contains(string(body), a.holds) {
			t.Errorf("GET %s: body does not hold %q", a.path, a.holds)
		}
		checkSecurityHeaders(t, a.path, h)
		if got := h.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", a.path, got)
		}
		etag := h.Get("ETag")
		if len(etag) < 10 || etag[0] != '"' || etag[len(etag)-1] != '"' {
			t.Fatalf("GET %s: ETag %q, want a strong quoted tag", a.path, etag)
		}

		// Revalidation with the tag: 304, no body.
		resp, body = fetch(t, srv, http.MethodGet, a.path, http.Header{"If-None-Match": {etag}})
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("GET %s with If-None-Match: status %d, %d bytes; want 304, none", a.path, resp.StatusCode, len(body))
		}
		// Another tag: the file again.
		resp, _ = fetch(t, srv, http.MethodGet, a.path, http.Header{"If-None-Match": {`"other"`}})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with another If-None-Match: status %d, want 200", a.path, resp.StatusCode)
		}
		// HEAD: the headers, no body.
		resp, body = fetch(t, srv, http.MethodHead, a.path, nil)
		if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Type") != a.ctype {
			t.Errorf("HEAD %s: status %d, %d bytes, %q", a.path, resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
		}
	}
	// The tags differ between files.
	seen := map[string]string{}
	for _, a := range assets {
		resp, _ := fetch(t, srv, http.MethodHead, a.path, nil)
		tag := resp.Header.Get("ETag")
		if other, ok := seen[tag]; ok {
			t.Errorf("%s and %s share ETag %s", a.path, other, tag)
		}
		seen[tag] = a.path
	}
}

// checkSecurityHeaders checks the headers every answer of the page carries.
func checkSecurityHeaders(t testing.TB, what string, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", what, csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "data:"} {
		if strings.Contains(csp, bad) {
			t.Errorf("%s: Content-Security-Policy %q allows %q", what, csp, bad)
		}
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q, want nosniff", what, got)
	}
	if got := h.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("%s: X-Frame-Options %q, want DENY", what, got)
	}
}

func TestHandlerRefuses(t *testing.T) {
	srv := httptest.NewServer(ui.Handler())
	t.Cleanup(srv.Close)
	cases := []struct {
		method, path string
		code         int
	}{
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/ui/app.js", http.StatusMethodNotAllowed},
		{http.MethodGet, "/index.html", http.StatusNotFound},
		{http.MethodGet, "/ui/", http.StatusNotFound},
		{http.MethodGet, "/ui/ui.go", http.StatusNotFound},
		{http.MethodGet, "/ui/../ui.go", http.StatusNotFound},
		{http.MethodGet, "/app.js", http.StatusNotFound},
	}
	for _, c := range cases {
		resp, body := fetch(t, srv, c.method, c.path, nil)
		var e struct{ Error string }
		if resp.StatusCode != c.code || resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s %s: status %d %q %s, want %d with a JSON error", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.code)
		}
		if c.code == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", c.method, c.path, resp.Header.Get("Allow"))
		}
	}
}
