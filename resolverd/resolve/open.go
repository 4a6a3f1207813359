package resolve

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/recurse"
	"github.com/shardns/shardns/resolverd/validate"
	"github.com/shardns/shardns/resolverd/zones"
)

// Config is what Open builds a Resolver from, and Reload rebuilds it
// from: resolverd's flags, or the all-in-one dnsd's.
type Config struct {
	// Upstreams are the default group's upstreams (forward.Config's), for
	// every name that no Forward group covers. Given with a "." group in
	// Forward, it is an error: one of them must say where names go.
	Upstreams []string
	// Forward are per-zone forwarding groups (forward.ParseRoutes): the
	// names at and below a group's zone go to its upstreams, the longest
	// zone winning. Names that neither a local zone nor a group covers
	// are REFUSED.
	Forward []forward.Route
	// Trusted lists upstreams of any group whose AD bit is passed on
	// (forward.RouterConfig's).
	Trusted []string
	// Zones is a folder of zone files answered locally (zones.Load); ""
	// for none. Local zones answer before any forwarding group.
	Zones string
	// Timeout and HealthInterval are forward.Config's (0: its defaults),
	// for every group.
	Timeout        time.Duration
	HealthInterval time.Duration
	// Registerer gets the forwarders' and the scrub counts' collectors,
	// once, at Open; nil registers none. Reload ignores it: the collectors
	// read whatever forwarders are current.
	Registerer prometheus.Registerer
	Logger     *slog.Logger // nil discards
	// Tap is forward.Config's: told of every query to an upstream (and,
	// with Recurse, to an authoritative server).
	Tap forward.Tap
	// Recurse resolves iteratively from the root (resolverd/recurse) the
	// names that neither a local zone nor a forwarding group covers.
	Recurse bool
	// RootHints is a root hints file (recurse.ParseHints) replacing the
	// built-in IANA hints; "" keeps them. Used with Recurse.
	RootHints string
	// RecurseCache and RecurseServers are the iterator's cache and server
	// share (recurse.Config's Cache and Servers; nil: in memory only),
	// e.g. the fleet's shared state in Redis (resolverd/recurse/redisstate).
	// Taken when the iterator is made, and kept across reloads with it.
	RecurseCache   recurse.Cache
	RecurseServers recurse.ServerShare
	// DNSSEC validates what the iterator resolves (resolverd/validate):
	// secure answers get AD when asked, bogus ones SERVFAIL with an
	// Extended DNS Error. Forwarded and local answers are not validated.
	// Used with Recurse.
	DNSSEC bool
	// TrustAnchor is a file of DS or DNSKEY records (validate.LoadAnchors)
	// replacing the built-in root trust anchors; "" keeps them. Used with
	// Recurse and DNSSEC.
	TrustAnchor string
}

// routes are cfg's forwarding groups, the default one included.
func (cfg Config) routes() ([]forward.Route, error) {
	routes := cfg.Forward
	if len(cfg.Upstreams) > 0 {
		if forward.HasDefault(routes) {
			return nil, errors.New(`the default upstreams are given twice: by the upstream list (-upstream) and by the "." forwarding group (-forward); give one of them`)
		}
		routes = append([]forward.Route{{Zone: ".", Upstreams: cfg.Upstreams}}, routes...)
	}
	return routes, nil
}

// build loads cfg's zones and root hints and starts its forwarders. On
// error nothing is left running. The iterator itself is the Resolver's,
// kept across reloads (see useRecursion); build only reads the hints.
func build(cfg Config, log *slog.Logger) (*state, error) {
	st := &state{}
	if cfg.Recurse {
		st.hints = recurse.DefaultHints()
		if cfg.RootHints != "" {
			h, err := recurse.LoadHints(cfg.RootHints)
			if err != nil {
				return nil, err
			}
			st.hints = h
		}
		if cfg.DNSSEC {
			st.anchors = validate.RootAnchors()
			if cfg.TrustAnchor != "" {
				a, err := validate.LoadAnchors(cfg.TrustAnchor)
				if err != nil {
					return nil, err
				}
				st.anchors = a
			}
		}
	} else if cfg.RootHints != "" {
		return nil, fmt.Errorf("root hints %s given without recursion (-recurse)", cfg.RootHints)
	}
	if cfg.TrustAnchor != "" && !(cfg.Recurse && cfg.DNSSEC) {
		return nil, fmt.Errorf("trust anchor %s given without validation (-recurse with -dnssec validate)", cfg.TrustAnchor)
	}
	if cfg.Zones != "" {
		a, err := zones.Load(cfg.Zones)
		if err != nil {
			return nil, err
		}
		st.zones = a
	}
	routes, err := cfg.routes()
	if err != nil {
		return nil, err
	}
	if len(routes) > 0 {
		rt, err := forward.NewRouter(forward.RouterConfig{
			Routes: routes, Trusted: cfg.Trusted,
			Timeout: cfg.Timeout, HealthInterval: cfg.HealthInterval, Logger: log,
			Tap: cfg.Tap,
		})
		if err != nil {
			return nil, err
		}
		st.fwd, st.router, st.close = rt, rt, rt.Close
	} else if len(cfg.Trusted) > 0 {
		return nil, fmt.Errorf("trusted upstreams %v given without any upstream", cfg.Trusted)
	}
	if st.zones == nil && st.fwd == nil && !cfg.Recurse {
		return nil, errors.New("neither zones nor upstreams configured")
	}
	return st, nil
}

// describe logs what st answers from.
func (st *state) describe(log *slog.Logger, msg string) {
	var zoneNames []string
	if st.zones != nil {
		zoneNames = st.zones.Zones()
	}
	var groups []any
	if st.router != nil {
		for _, f := range st.router.Forwarders() {
			ups := make([]string, 0, len(f.Upstreams()))
			for _, u := range f.Upstreams() {
				ups = append(ups, u.Address)
			}
			groups = append(groups, slog.Any(f.Group(), ups))
		}
	}
	var anchors []string
	if st.anchors != nil {
		anchors = st.anchors.Zones()
	}
	log.Info(msg, "zones", zoneNames, slog.Group("forward", groups...), "recurse", st.hints != nil, "dnssec", st.anchors != nil, "trust_anchors", anchors)
}

// Open builds the resolver cfg describes: local zones, the forwarding
// groups with their health checks, scrubbing, and their metrics.
// resolverd's gRPC service and queue workers and the all-in-one dnsd all
// use one built here. Close stops the forwarders' health checks.
func Open(cfg Config) (*Resolver, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := build(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("resolve: %w", err)
	}
	r := &Resolver{log: log, tap: cfg.Tap, reg: cfg.Registerer, recCache: cfg.RecurseCache, recServers: cfg.RecurseServers}
	if err := r.useRecursion(st); err != nil {
		if st.close != nil {
			st.close()
		}
		return nil, fmt.Errorf("resolve: %w", err)
	}
	r.cur.Store(st)
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(forward.NewCollector(r.forwarders)); err != nil {
			r.Close()
			return nil, fmt.Errorf("resolve: register the forwarders' metrics: %w", err)
		}
		if err := cfg.Registerer.Register(r.Collector()); err != nil {
			r.Close()
			return nil, fmt.Errorf("resolve: register the scrub metrics: %w", err)
		}
	}
	st.describe(log, "resolver")
	return r, nil
}

// forwarders are the current forwarding groups, for the metrics.
func (r *Resolver) forwarders() []*forward.Forwarder {
	if st := r.cur.Load(); st.router != nil {
		return st.router.Forwarders()
	}
	return nil
}

// Zones returns the apexes of the local zones the resolver answers now,
// lower case, sorted.
func (r *Resolver) Zones() []string {
	if st := r.cur.Load(); st.zones != nil {
		out := st.zones.Zones()
		for i, z := range out {
			out[i] = dns.CanonicalName(z)
		}
		slices.Sort(out)
		return out
	}
	return nil
}

// useRecursion gives st the Resolver's iterator when st recurses: made
// on first use (its limit counter registered then on Open's Registerer),
// and kept across reloads with its cache and server memory, the hints
// replaced by st's (the root is primed again from them). With DNSSEC
// validation, st answers through the Resolver's Validating, kept too,
// with a new validator of st's trust anchors; the iterator asks with DO
// then.
func (r *Resolver) useRecursion(st *state) error {
	if st.hints == nil {
		return nil
	}
	validating := st.anchors != nil
	if r.iter == nil {
		it, err := recurse.New(recurse.Config{Hints: st.hints, Tap: r.tap, Registerer: r.reg, Logger: r.log, Cache: r.recCache, Servers: r.recServers, DNSSEC: validating})
		if err != nil {
			return err
		}
		r.iter = it
	} else if err := r.iter.SetHints(st.hints); err != nil {
		return err
	}
	r.iter.SetDNSSEC(validating)
	st.rec = r.iter
	if validating {
		v := validate.New(validate.Config{Anchors: st.anchors})
		if r.secure == nil {
			sec := NewValidating(r.iter, v)
			if r.reg != nil {
				if err := r.reg.Register(sec.Results()); err != nil {
					return fmt.Errorf("register the DNSSEC metrics: %w", err)
				}
			}
			r.secure = sec
		} else {
			r.secure.SetValidator(v)
		}
		st.rec = r.secure
	}
	return nil
}

// ErrClosed is returned by Reload after Close.
var ErrClosed = errors.New("resolve: the resolver is closed")

// Reload replaces the resolver's local zones and forwarding groups with
// the ones cfg describes (cfg.Registerer and cfg.Tap are not used: the
// collectors Open registered follow the swap, and the new forwarders tell
// Open's Tap). Everything new is built first: the zone
// files loaded, the forwarders made and their health checks started. If
// any of it fails, nothing changes and the error says why. Otherwise the
// new zones and forwarders replace the old in one atomic swap: a query
// already answering finishes on the old ones (a forwarder keeps working
// after its health checks stop), every later one uses the new; then the
// old forwarders' health checks are stopped. Reloads are serialized.
func (r *Resolver) Reload(cfg Config) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	if r.closed {
		return ErrClosed
	}
	log := r.log
	if cfg.Logger != nil {
		log = cfg.Logger
	}
	cfg.Tap = r.tap
	st, err := build(cfg, log)
	if err != nil {
		return fmt.Errorf("resolve: reload: %w (nothing changed)", err)
	}
	if err := r.useRecursion(st); err != nil {
		if st.close != nil {
			st.close()
		}
		return fmt.Errorf("resolve: reload: %w (nothing changed)", err)
	}
	old := r.cur.Swap(st)
	r.log = log
	if old.close != nil {
		old.close()
	}
	st.describe(log, "resolver reloaded")
	return nil
}

// Close stops what Open or Reload started (the forwarders' health
// checks). It is safe to call more than once; Resolve keeps working after
// it, without health checks, and Reload refuses.
func (r *Resolver) Close() error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	r.closed = true
	if st := r.cur.Load(); st.close != nil {
		return st.close()
	}
	return nil
}
