package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Route is one forwarding group: the names at and below Zone go to
// Upstreams.
type Route struct {
	// Zone is a lower-case fully qualified name; "." is the default group,
	// for every name no other group covers.
	Zone string
	// Upstreams are written as in Config.Upstreams.
	Upstreams []string
}

// ParseRoutes parses per-zone forwarding written as
//
//	zone=upstream,upstream;zone=upstream
//
// for example "corp.example=10.0.0.1:53,10.0.0.2:53;.=tls://9.9.9.9#dns.quad9.net".
// Upstreams are written as in Config.Upstreams; "." names the default
// group. Spaces around a zone or an upstream are ignored. An empty spec is
// no routes. Errors name the entry (counted from 1) and what is wrong in
// it: an empty zone, a name that is not one, no upstreams, a zone given
// twice, an upstream that does not parse or is listed twice in its group.
func ParseRoutes(spec string) ([]Route, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	var routes []Route
	seen := make(map[string]int) // zone -> entry number
	for i, entry := range strings.Split(spec, ";") {
		n := i + 1
		zone, list, ok := strings.Cut(entry, "=")
		if !ok {
			if strings.TrimSpace(entry) == "" {
				return nil, fmt.Errorf("forward: entry %d is empty (entries are separated by ';', want zone=upstream,...)", n)
			}
			return nil, fmt.Errorf("forward: entry %d %q: no '=' (want zone=upstream,...)", n, entry)
		}
		zone = strings.TrimSpace(zone)
		if zone == "" {
			return nil, fmt.Errorf("forward: entry %d %q: empty zone (write \".\" for the default group)", n, entry)
		}
		canon, err := zoneName(zone)
		if err != nil {
			return nil, fmt.Errorf("forward: entry %d: zone %q: %w", n, zone, err)
		}
		if prev, dup := seen[canon]; dup {
			return nil, fmt.Errorf("forward: entry %d: zone %s is already given in entry %d", n, canon, prev)
		}
		seen[canon] = n
		r := Route{Zone: canon}
		canons := make(map[string]bool)
		for j, s := range strings.Split(list, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				if strings.Trim(list, ", \t") == "" {
					return nil, fmt.Errorf("forward: entry %d: zone %s has no upstreams", n, canon)
				}
				return nil, fmt.Errorf("forward: entry %d: zone %s: upstream %d is empty", n, canon, j+1)
			}
			u, err := parseUpstreamBare(s)
			if err != nil {
				return nil, fmt.Errorf("forward: entry %d: zone %s: upstream %d: %w", n, canon, j+1, err)
			}
			if canons[u.canon] {
				return nil, fmt.Errorf("forward: entry %d: zone %s: upstream %q (%s) is listed twice", n, canon, s, u.canon)
			}
			canons[u.canon] = true
			r.Upstreams = append(r.Upstreams, s)
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// maxZoneName is the longest zone name accepted in presentation form.
const maxZoneName = 253

// zoneName checks a zone as written and returns it lower-case and fully
// qualified. Escapes and wildcards are refused: a zone is a plain name.
func zoneName(zone string) (string, error) {
	if zone == "." {
		return ".", nil
	}
	if strings.ContainsAny(zone, "\\*= \t") {
		return "", errors.New("not a plain domain name (no escapes, wildcards or spaces)")
	}
	if strings.HasPrefix(zone, ".") || strings.Contains(zone, "..") {
		return "", errors.New("empty label")
	}
	if len(strings.TrimSuffix(zone, ".")) > maxZoneName {
		return "", fmt.Errorf("longer than %d characters", maxZoneName)
	}
	for _, label := range strings.Split(strings.TrimSuffix(zone, "."), ".") {
		if len(label) > 63 {
			return "", fmt.Errorf("label %q is longer than 63 octets", label)
		}
	}
	if _, ok := dns.IsDomainName(zone); !ok {
		return "", errors.New("not a domain name")
	}
	return dns.CanonicalName(zone), nil
}

// HasDefault reports whether routes include the default group, ".".
func HasDefault(routes []Route) bool {
	return slices.ContainsFunc(routes, func(r Route) bool { return r.Zone == "." })
}

// RouterConfig configures a Router. The settings other than Routes and
// Trusted are every group's Config.
type RouterConfig struct {
	// Routes are the groups, each with at least one upstream; zones must
	// be distinct (ParseRoutes makes them so).
	Routes []Route
	// Trusted lists upstreams, written as in Config.Trusted, across the
	// groups: each must be an upstream of at least one group, and is
	// trusted in every group that lists it.
	Trusted        []string
	Timeout        time.Duration
	HealthInterval time.Duration
	TLSConfig      *tls.Config
	Logger         *slog.Logger
	Tap            Tap // every group's (Config.Tap)
}

// ErrNoRoute is returned by Router.Exchange for a name that no group
// covers (there is no default group).
var ErrNoRoute = errors.New("forward: no forwarding group covers the name")

// Router sends each query to the group whose zone is the longest suffix
// of the query name, each group a Forwarder of its own (its own health
// checks and choice of server). It is safe for concurrent use; Close stops
// every group's health checks.
type Router struct {
	groups []*Forwarder // in the order of the routes
	def    *Forwarder   // the "." group, or nil
	named  []*Forwarder // groups other than the default
}

// NewRouter builds a Forwarder per route and starts their health checks.
// On error nothing is left running.
func NewRouter(cfg RouterConfig) (*Router, error) {
	if len(cfg.Routes) == 0 {
		return nil, errors.New("forward: no forwarding groups")
	}
	// Which groups list each trusted upstream.
	trusted := make([][]string, len(cfg.Routes))
	for _, s := range cfg.Trusted {
		t, err := parseUpstream(s)
		if err != nil {
			return nil, fmt.Errorf("%w (in the trusted list)", err)
		}
		found := false
		for i, r := range cfg.Routes {
			for _, us := range r.Upstreams {
				if u, err := parseUpstreamBare(us); err == nil && u.canon == t.canon {
					trusted[i] = append(trusted[i], us)
					found = true
					break
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("forward: trusted upstream %q (%s) is not one of the upstreams", s, t.canon)
		}
	}
	rt := &Router{}
	seen := make(map[string]bool, len(cfg.Routes))
	for i, r := range cfg.Routes {
		zone, err := zoneName(r.Zone)
		if err != nil {
			rt.Close()
			return nil, fmt.Errorf("forward: zone %q: %w", r.Zone, err)
		}
		if seen[zone] {
			rt.Close()
			return nil, fmt.Errorf("forward: zone %s given twice", zone)
		}
		seen[zone] = true
		f, err := New(Config{
			Upstreams: r.Upstreams, Trusted: trusted[i], Group: zone,
			Timeout: cfg.Timeout, HealthInterval: cfg.HealthInterval,
			TLSConfig: cfg.TLSConfig, Logger: cfg.Logger, Tap: cfg.Tap,
		})
		if err != nil {
			rt.Close()
			return nil, fmt.Errorf("%w (zone %s)", err, zone)
		}
		rt.groups = append(rt.groups, f)
		if zone == "." {
			rt.def = f
		} else {
			rt.named = append(rt.named, f)
		}
	}
	return rt, nil
}

// Route returns the group that serves name: the one whose zone is the
// longest suffix of name, at a label boundary, compared without regard to
// ASCII case; else the default group; nil when there is none.
func (rt *Router) Route(name string) *Forwarder {
	if len(rt.named) == 0 {
		return rt.def
	}
	name = dns.Fqdn(name)
	// Suffixes of name, longest first: the first zone matched is the
	// longest that covers it.
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		suffix := name[off:]
		for _, f := range rt.named {
			if len(f.group) == len(suffix) && strings.EqualFold(f.group, suffix) {
				return f
			}
		}
	}
	return rt.def
}

// Exchange sends q to the group that serves its name (Route), as
// Forwarder.Exchange does. A name no group serves is ErrNoRoute.
func (rt *Router) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, string, error) {
	a, err := rt.ExchangeWire(ctx, q)
	return a.Msg, a.Source, err
}

// ExchangeWire is Exchange, as Forwarder.ExchangeWire.
func (rt *Router) ExchangeWire(ctx context.Context, q *dns.Msg) (Answer, error) {
	if q == nil || len(q.Question) != 1 {
		return Answer{}, errors.New("forward: query must have exactly one question")
	}
	f := rt.Route(q.Question[0].Name)
	if f == nil {
		return Answer{}, ErrNoRoute
	}
	return f.ExchangeWire(ctx, q)
}

// Forwarders returns every group's forwarder, in the order of the routes.
func (rt *Router) Forwarders() []*Forwarder { return rt.groups }

// Close stops every group's health checks and waits for them. It is safe
// to call more than once; Exchange keeps working after it.
func (rt *Router) Close() error {
	for _, f := range rt.groups {
		f.Close()
	}
	return nil
}
