package api

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// hostPolicy is which names the Host header may carry. A DNS rebinding
// attack points a name the attacker owns at the server's address, so the
// victim's browser sends that name as Host; refusing names the server
// does not answer to stops it. Ports are not compared: rebinding changes
// the name, not the port.
//
// Allowed: "localhost" and loopback addresses; the listen address (an IP
// address, or a name); the -http-host names and addresses. A wildcard listen address
// (":8080", "0.0.0.0:8080", "[::]:8080") allows every IP address literal,
// since a browser sends an address as Host only for a page whose origin is
// that address itself, which no attacker can rebind; names must still be
// listed in -http-host.
type hostPolicy struct {
	wildcard bool                // any IP address literal
	addrs    map[netip.Addr]bool // the listen address, when one was given, and -http-host's
	names    map[string]bool     // lower case, no final dot
}

// newHostPolicy builds the policy of a server listening on listen (as
// given, or as bound) with the extra names.
func newHostPolicy(listen string, extra []string) hostPolicy {
	p := hostPolicy{addrs: map[netip.Addr]bool{}, names: map[string]bool{"localhost": true}}
	host := listen
	if h, _, err := net.SplitHostPort(listen); err == nil {
		host = h
	}
	if host == "" {
		p.wildcard = true
	} else if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
		p.wildcard = true
	} else {
		p.add(host)
	}
	for _, n := range extra {
		p.add(n)
	}
	return p
}

// add allows a name or an address (brackets around IPv6 allowed).
func (p hostPolicy) add(host string) {
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(host), "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		p.addrs[a.Unmap().WithZone("")] = true
	} else if n := canonicalHost(host); n != "" {
		p.names[n] = true
	}
}

// canonicalHost lower-cases a name and drops its final dot.
func canonicalHost(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// splitHost takes the host of a Host header value ("name", "name:port",
// "1.2.3.4:80", "[::1]:80", "[::1]"); ok is false for a malformed one.
func splitHost(hostport string) (string, bool) {
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", false
		}
		host, port = hostport[1:end], strings.TrimPrefix(hostport[end+1:], ":")
		if rest := hostport[end+1:]; rest != "" && !strings.HasPrefix(rest, ":") {
			return "", false
		}
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i+1:]
		if strings.Contains(host, ":") {
			return "", false // an IPv6 address without brackets
		}
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return "", false
		}
	}
	return host, host != ""
}

// allowsName reports whether host (no port) is the server's own.
func (p hostPolicy) allowsName(host string, anyAddress bool) bool {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return false
		}
		a = a.Unmap()
		return a.IsLoopback() || p.addrs[a] || (anyAddress && p.wildcard)
	}
	return p.names[canonicalHost(host)]
}

// allowsHost reports whether a request with this Host header is for this
// server.
func (p hostPolicy) allowsHost(hostport string) bool {
	host, ok := splitHost(hostport)
	return ok && p.allowsName(host, true)
}

// allowsOrigin reports whether a web page of origin may change state: the
// page is the server's own (its host is the request's Host) or its host is
// one the server answers to by name or address. An address literal allowed
// only by a wildcard listen address does not count here: an attacker can
// serve a page from an address of their own.
func (p hostPolicy) allowsOrigin(origin, reqHost string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.User != nil {
		return false // "null" included
	}
	host, ok := splitHost(u.Host)
	if !ok {
		return false
	}
	if rh, ok := splitHost(reqHost); ok && strings.EqualFold(host, rh) && p.allowsName(rh, true) {
		return true
	}
	return p.allowsName(host, false)
}

// checkHost answers 421 Misdirected Request, before any handler runs, to
// a request whose Host names another server.
func (a *API) checkHost(w http.ResponseWriter, r *http.Request) bool {
	if a.hosts.allowsHost(r.Host) {
		return true
	}
	writeError(w, http.StatusMisdirectedRequest, "this server does not answer to that Host name (see -http-host)")
	return false
}
