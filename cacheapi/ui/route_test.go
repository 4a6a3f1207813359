package ui_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestRoutedByAPI checks the page through the API's router: "/" and the
// assets are served, and the API's own routes and errors are not shadowed.
func TestRoutedByAPI(t *testing.T) {
	s := newSite(t, nil, nil)
	for _, a := range assets {
		resp, body := fetch(t, s.srv, http.MethodGet, a.path, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != a.ctype || !strings.Contains(string(body), a.holds) {
			t.Errorf("GET %s via the API: status %d %q", a.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		checkSecurityHeaders(t, a.path, resp.Header)
		resp, body = fetch(t, s.srv, http.MethodHead, a.path, nil)
		if resp.StatusCode != http.StatusOK || len(body) != 0 {
			t.Errorf("HEAD %s via the API: status %d, %d bytes", a.path, resp.StatusCode, len(body))
		}
	}
	// The API's routes answer as before.
	resp, body := fetch(t, s.srv, http.MethodGet, "/healthz", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ok"`) {
		t.Errorf("GET /healthz: %d %s", resp.StatusCode, body)
	}
	resp, body = fetch(t, s.srv, http.MethodGet, "/lookup?name=www.example.test&type=A", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "192.0.2.1") {
		t.Errorf("GET /lookup: %d %s", resp.StatusCode, body)
	}
	// Not the page: the API's JSON errors.
	cases := []struct {
		method, path string
		code         int
	}{
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodPut, "/ui/app.js", http.StatusMethodNotAllowed},
		{http.MethodGet, "/ui/", http.StatusNotFound},
		{http.MethodGet, "/ui/nope.js", http.StatusNotFound},
		{http.MethodGet, "/ui/app.js/x", http.StatusNotFound},
		{http.MethodGet, "/index.html", http.StatusNotFound},
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodGet, "/jobs", http.StatusNotFound}, // no queue yet
	}
	// No shards: /stats describes the process alone.
	resp, body = fetch(t, s.srv, http.MethodGet, "/stats", nil)
	var st struct {
		Shards  []any
		Process *struct{ Kind string }
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil || st.Process == nil || len(st.Shards) != 0 {
		t.Errorf("GET /stats without shards: %d %s, want the process's numbers", resp.StatusCode, body)
	}
	for _, c := range cases {
		resp, body := fetch(t, s.srv, c.method, c.path, nil)
		var e struct{ Error string }
		if resp.StatusCode != c.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s %s: status %d %q %s, want %d with a JSON error", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.code)
		}
	}
}
