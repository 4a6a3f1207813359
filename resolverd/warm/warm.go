// Package warm is the work resolverd's queue workers do: resolve a name
// locally and write the answer into the cache tier under the same TTL rules
// as the query path, so the next query for it is a hit. Tasks of kind
// "warm" come from jobs (a name and a type); tasks of kind "refresh" come
// from the fleet's prefetch scheduler (a cache key of a popular entry near
// expiry).
package warm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/queue"
)

// Resolver answers a packed query with a packed answer (resolverd's
// resolver, resolve.Resolver), as lookup.Resolver does. A DNS failure is an
// answer, not an error.
type Resolver interface {
	Resolve(ctx context.Context, q []byte) ([]byte, error)
}

// Store is the cache tier the answers go to (cache.Redis).
type Store interface {
	Get(ctx context.Context, key string) (*cache.Entry, error)
	Set(ctx context.Context, key string, e *cache.Entry) error
}

// Config is what a Warmer needs.
type Config struct {
	Resolver   Resolver
	Store      Store
	Policy     dnsmsg.Policy
	Stale      time.Duration         // the serve-stale window, as the frontends use
	Registerer prometheus.Registerer // nil: metrics are not registered
	Now        func() time.Time      // nil: time.Now
}

// Warmer does warm and refresh tasks.
type Warmer struct {
	cfg     Config
	rules   atomic.Pointer[lookup.Rules] // cfg's Policy and Stale, replaced by SetRules
	results *prometheus.CounterVec
}

// SetRules replaces the TTL policy and the serve-stale window (Config's
// Policy and Stale) for the tasks that store from then on.
func (w *Warmer) SetRules(policy dnsmsg.Policy, stale time.Duration) {
	w.rules.Store(&lookup.Rules{Policy: policy, Stale: stale})
}

// New returns a Warmer.
func New(cfg Config) (*Warmer, error) {
	if cfg.Resolver == nil || cfg.Store == nil {
		return nil, errors.New("warm: a resolver and a cache store are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &Warmer{cfg: cfg, results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "shardns", Subsystem: "warm", Name: "results_total",
		Help: "Warm and refresh tasks by kind and outcome: stored, uncacheable, skipped (a fresher entry was there), failed.",
	}, []string{"kind", "outcome"})}
	w.SetRules(cfg.Policy, cfg.Stale)
	// Every kind and outcome is exported from the start, at zero.
	for _, kind := range []string{queue.KindWarm, queue.KindRefresh} {
		for _, outcome := range []string{"stored", "uncacheable", "skipped", "failed"} {
			w.results.WithLabelValues(kind, outcome)
		}
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(w.results)
	}
	return w, nil
}

// Handle does one task; it is a queue.Handler.
func (w *Warmer) Handle(ctx context.Context, t *queue.Task) (string, error) {
	res, outcome, err := w.handle(ctx, t)
	w.results.WithLabelValues(t.Kind, outcome).Inc()
	return res, err
}

func (w *Warmer) handle(ctx context.Context, t *queue.Task) (string, string, error) {
	var q dnsmsg.Query
	switch t.Kind {
	case queue.KindWarm:
		name, err := dnsmsg.ParseName(t.Name)
		if err != nil {
			return "", "failed", fmt.Errorf("warm: %q: %w", t.Name, err)
		}
		qtype, ok := dnsmsg.ParseType(t.Type)
		if !ok {
			return "", "failed", fmt.Errorf("warm: %q: bad type %q", t.Name, t.Type)
		}
		q = dnsmsg.Query{Name: name, Type: qtype, Class: dns.ClassINET, RD: true}
		q.Key = dnsmsg.Key(q.Name, q.Type, q.Class, false, false)
	case queue.KindRefresh:
		var err error
		if q, err = dnsmsg.ParseKey(t.Key); err != nil {
			return "", "failed", fmt.Errorf("warm: refresh %q: %w", t.Key, err)
		}
		// Stored again since the refresh was scheduled (by a miss, or
		// another run of this task): nothing to do.
		if e, err := w.cfg.Store.Get(ctx, q.Key); err == nil && !t.Created.IsZero() && e.StoredAt.After(t.Created) {
			return "fresh already", "skipped", nil
		}
	default:
		return "", "failed", fmt.Errorf("warm: unknown task kind %q", t.Kind)
	}
	wire, err := q.AppendUpstream(nil, dns.Id())
	if err != nil {
		return "", "failed", fmt.Errorf("warm: %s: %w", q.Key, err)
	}
	ans, err := w.cfg.Resolver.Resolve(ctx, wire)
	if err != nil {
		return "", "failed", fmt.Errorf("warm: resolve %s: %w", q.Key, err)
	}
	if !dnsmsg.AnswersQuery(wire, ans) {
		return "", "failed", fmt.Errorf("warm: resolve %s: the answer is to another question", q.Key)
	}
	rcode := dns.RcodeToString[int(ans[3]&0x0F)]
	if r := ans[3] & 0x0F; r != dns.RcodeSuccess && r != dns.RcodeNameError {
		// SERVFAIL, REFUSED and the like are worth another attempt; the
		// query path keeps its own short SERVFAIL entries.
		return "", "failed", fmt.Errorf("warm: %s: upstream answered %s", q.Key, rcode)
	}
	r := w.rules.Load()
	e, cacheable, err := lookup.NewEntry(ans, r.Policy, r.Stale, w.cfg.Now())
	if err != nil {
		return "", "failed", fmt.Errorf("warm: %s: %w", q.Key, err)
	}
	if !cacheable {
		return rcode + " not cacheable", "uncacheable", nil
	}
	if err := w.cfg.Store.Set(ctx, q.Key, e); err != nil {
		return "", "failed", fmt.Errorf("warm: store %s: %w", q.Key, err)
	}
	return fmt.Sprintf("%s ttl=%d answers=%d", rcode, e.TTL, binary.BigEndian.Uint16(e.Msg[6:])), "stored", nil
}
