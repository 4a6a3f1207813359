package resolve

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/zones"
)

// Config is what Open builds a Resolver from: resolverd's flags, or the
// all-in-one dnsd's.
type Config struct {
	// Upstreams and Trusted are forward.Config's; no upstreams means
	// every name not in a local zone is REFUSED.
	Upstreams []string
	Trusted   []string
	// Zones is a folder of zone files answered locally (zones.Load); ""
	// for none.
	Zones string
	// Timeout and HealthInterval are forward.Config's (0: its defaults).
	Timeout        time.Duration
	HealthInterval time.Duration
	// Registerer gets the forwarder's and the scrub counts' collectors;
	// nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger // nil discards
	// Tap is forward.Config's: told of every query to an upstream.
	Tap forward.Tap
}

// Open builds the resolver cfg describes: local zones, the forwarder with
// its health checks, scrubbing, and their metrics. resolverd's gRPC
// service and queue workers and the all-in-one dnsd all use one built
// here. Close stops the forwarder's health checks.
func Open(cfg Config) (*Resolver, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var auth Authority
	if cfg.Zones != "" {
		a, err := zones.Load(cfg.Zones)
		if err != nil {
			return nil, fmt.Errorf("resolve: %w", err)
		}
		auth = a
	}
	var (
		fwd Forwarder
		f   *forward.Forwarder
	)
	if len(cfg.Upstreams) > 0 {
		var err error
		f, err = forward.New(forward.Config{
			Upstreams: cfg.Upstreams, Trusted: cfg.Trusted,
			Timeout: cfg.Timeout, HealthInterval: cfg.HealthInterval, Logger: log,
			Tap: cfg.Tap,
		})
		if err != nil {
			return nil, fmt.Errorf("resolve: %w", err)
		}
		fwd = f
	}
	r, err := New(auth, fwd)
	if err != nil {
		return nil, err
	}
	if f != nil {
		r.close = f.Close
	}
	if cfg.Registerer != nil {
		if f != nil {
			if err := cfg.Registerer.Register(f.Collector()); err != nil {
				r.Close()
				return nil, fmt.Errorf("resolve: register the forwarder's metrics: %w", err)
			}
		}
		if err := cfg.Registerer.Register(r.Collector()); err != nil {
			r.Close()
			return nil, fmt.Errorf("resolve: register the scrub metrics: %w", err)
		}
	}
	var zoneNames []string
	if auth != nil {
		zoneNames = auth.Zones()
	}
	log.Info("resolver", "upstreams", cfg.Upstreams, "trusted", cfg.Trusted, "zones", zoneNames)
	return r, nil
}

// Close stops what Open started (the forwarder's health checks). It is
// safe to call more than once; Resolve keeps working after it, without
// health checks.
func (r *Resolver) Close() error {
	if r.close != nil {
		return r.close()
	}
	return nil
}
