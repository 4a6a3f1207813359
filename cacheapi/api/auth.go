package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"
)

// challenge is the WWW-Authenticate of a 401 (RFC 6750 §3).
const challenge = `Bearer realm="shardns"`

// authorized guards a route that needs the bearer token: calls that change
// state and GET /cache/{name}, which tells what was looked up and when.
// Every client needs it, loopback ones too: a browser on the same host is
// a loopback client, and a proxy on the same host makes every client one.
// No header, another scheme or a wrong token: 401 with a challenge (RFC
// 6750 §3.1). A server with no token refuses everyone.
func (a *API) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", challenge)
			writeError(w, http.StatusUnauthorized, "Authorization: Bearer <token> required (the token is in the server's -token-file)")
			return
		}
		if a.token == "" || !sameToken(got, a.token) {
			w.Header().Set("WWW-Authenticate", challenge+`, error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "wrong token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// mutating guards a call that changes state: a request a web page sent
// from another origin (its Origin header names a host the server does not
// answer to) gets 403, then the token is checked.
func (a *API) mutating(next http.Handler) http.Handler {
	auth := a.authorized(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origins := r.Header.Values("Origin"); len(origins) > 0 {
			if len(origins) > 1 || !a.hosts.allowsOrigin(origins[0], r.Host) {
				writeError(w, http.StatusForbidden, "cross-origin request refused")
				return
			}
		}
		auth.ServeHTTP(w, r)
	})
}

// bearer reads the token of an "Authorization: Bearer <token>" header.
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// sameToken compares in constant time, lengths included (the hashes have
// one length).
func sameToken(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// clientAddr is the address the request came from (not any header a proxy
// may have set).
func clientAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// resolving guards /lookup and /dns-query, which make shardns resolve for
// the client: clients outside the ACL get 403 (an open resolver over HTTP
// is as abusable as one over UDP), the others are rate-limited.
func (a *API) resolving(next http.Handler) http.Handler {
	limited := a.limited(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if addr, ok := clientAddr(r); !ok || !a.acl.Allowed(addr) {
			writeError(w, http.StatusForbidden, "this client may not resolve here")
			return
		}
		limited.ServeHTTP(w, r)
	})
}
