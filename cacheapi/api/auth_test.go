package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMutatingNeedsToken(t *testing.T) {
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), func(c *Config) { c.Token = "s3cret" })
	lookupAll(t, m, []string{"www.example.test"}, "type=A")
	for _, c := range []struct {
		what, auth string
		code       int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"another scheme", "Basic czNjcmV0", http.StatusUnauthorized},
		{"empty token", "Bearer ", http.StatusUnauthorized},
		{"wrong token", "Bearer s3cre", http.StatusForbidden},
		{"longer token", "Bearer s3cret2", http.StatusForbidden},
	} {
		h := http.Header{}
		if c.auth != "" {
			h.Set("Authorization", c.auth)
		}
		resp, body := do(t, m.srv, http.MethodDelete, "/cache/www.example.test", h, nil)
		mustJSONError(t, c.what, resp, body, c.code)
		if c.code == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.what)
		}
	}
	if m.fe.L1.Len() != 1 {
		t.Fatalf("a refused DELETE changed the cache: L1 holds %d", m.fe.L1.Len())
	}
	for _, auth := range []string{"Bearer s3cret", "bearer  s3cret "} {
		resp, body := do(t, m.srv, http.MethodDelete, "/cache/www.example.test", http.Header{"Authorization": {auth}}, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%q: %d %s", auth, resp.StatusCode, body)
		}
	}
	if m.fe.L1.Len() != 0 {
		t.Errorf("DELETE with the token left %d entries", m.fe.L1.Len())
	}
	// Reads need no token.
	resp, _ := do(t, m.srv, http.MethodGet, "/cache/www.example.test", nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /cache without a token: %d", resp.StatusCode)
	}
}

func TestMutatingWithoutTokenOnlyFromLoopback(t *testing.T) {
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), nil)
	h := New(Config{Chain: m.fe.Chain, Cache: m.fe})
	for _, c := range []struct {
		remote string
		code   int
	}{
		{"127.0.0.1:40000", http.StatusOK},
		{"[::1]:40000", http.StatusOK},
		{"[::ffff:127.0.0.1]:40000", http.StatusOK},
		{"192.0.2.7:40000", http.StatusForbidden},
		{"[2001:db8::7]:40000", http.StatusForbidden},
		{"garbage", http.StatusForbidden},
	} {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodDelete, "/cache/www.example.test", nil)
		req.RemoteAddr = c.remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var e errorBody
		if rec.Code != c.code || json.Unmarshal(rec.Body.Bytes(), &e) != nil {
			t.Errorf("DELETE from %s: %d %s, want %d", c.remote, rec.Code, rec.Body, c.code)
		}
	}
}
