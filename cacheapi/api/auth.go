package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"
)

// mutating guards a call that changes the cache. With a token configured
// the request needs "Authorization: Bearer <token>": without one it gets
// 401 and a WWW-Authenticate challenge, with a wrong one 403. With no token
// configured only loopback clients are served (403 for the others): that
// keeps a default install safe, but behind a reverse proxy on the same
// host every client looks like loopback, so set -token there.
func (a *API) mutating(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.token == "" {
			if !fromLoopback(r) {
				writeError(w, http.StatusForbidden, "mutating calls need a -token to be set, or a loopback client")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		got, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shardns"`)
			writeError(w, http.StatusUnauthorized, "Authorization: Bearer <token> required")
			return
		}
		if !sameToken(got, a.token) {
			writeError(w, http.StatusForbidden, "wrong token")
			return
		}
		next.ServeHTTP(w, r)
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

func fromLoopback(r *http.Request) bool {
	a, ok := clientAddr(r)
	return ok && a.IsLoopback()
}
