package redisstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/resolverd/recurse"
)

// DefaultTimeout is a Redis call's budget when Config.Timeout is 0.
const DefaultTimeout = 50 * time.Millisecond

// writeQueue bounds the writes waiting to go out; more are dropped.
const writeQueue = 4096

// writeBatch is how many writes go in one pipeline.
const writeBatch = 64

// Config configures a Store and the Servers over the same client.
type Config struct {
	// Client is the cache shards' client (cache.Redis.Client: a Ring or a
	// ClusterClient). Its keys are hashed by their {…} tag.
	Client redis.UniversalClient
	// Timeout bounds each call (0: DefaultTimeout). A call that fails or
	// takes longer is a miss.
	Timeout time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Registerer gets the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Logger gets the values refused (nil: discarded).
	Logger *slog.Logger
	// DNSSEC says the iterator asks with the DNSSEC OK bit
	// (recurse.Config.DNSSEC): its answers, with their signatures, are
	// kept under their own keys. It must be the iterator's setting.
	DNSSEC bool
}

// metrics are a Store's and its Servers' counters.
type metrics struct {
	reads    *prometheus.CounterVec // kind, result
	writes   *prometheus.CounterVec // result
	rejected *prometheus.CounterVec // reason
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "recurse_shared", Name: "reads_total",
			Help: "Reads of the resolver state shared in Redis, by kind (delegation, answer, server) and result (hit, miss, error: a failed or slow call, rejected: a value refused).",
		}, []string{"kind", "result"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "recurse_shared", Name: "writes_total",
			Help: "Writes of the resolver state shared in Redis, by result (ok, error, dropped: the write queue was full, too_large: over the value size bound).",
		}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "recurse_shared", Name: "rejected_total",
			Help: "Values of the shared resolver state read from Redis and ignored, by reason (version, malformed, key: not the value of its key, size).",
		}, []string{"reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.reads, m.writes, m.rejected} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("redisstate: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Store is recurse.Cache over Redis. Reads wait at most the Timeout and
// every failure is a miss; writes are queued and go out in pipelines on
// their own goroutine, so a Put never waits on Redis. Close stops it.
type Store struct {
	c       redis.UniversalClient
	timeout time.Duration
	now     func() time.Time
	m       *metrics
	log     *slog.Logger
	do      atomic.Bool // the iterator asks with DO: answers live under :do keys

	queue   chan write
	pending atomic.Int64 // writes queued or in flight
	done    chan struct{}
	stopped chan struct{} // closed when writeLoop has returned
	once    sync.Once
	lastLog atomic.Int64 // unix nanoseconds of the last refusal logged
}

var _ recurse.Cache = (*Store)(nil)

type write struct {
	key   string
	value []byte
	ttl   time.Duration
}

func (cfg *Config) defaults() error {
	if cfg.Client == nil {
		return errors.New("redisstate: no Redis client")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// New returns a Store and the Servers over cfg.Client, sharing metrics.
// Close both when done (the client is the caller's).
func New(cfg Config) (*Store, *Servers, error) {
	if err := cfg.defaults(); err != nil {
		return nil, nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, nil, err
	}
	s := &Store{c: cfg.Client, timeout: cfg.Timeout, now: cfg.Now, m: m, log: cfg.Logger,
		queue: make(chan write, writeQueue), done: make(chan struct{}), stopped: make(chan struct{})}
	s.do.Store(cfg.DNSSEC)
	go s.writeLoop()
	return s, newServers(cfg, m), nil
}

// SetDNSSEC says whether the iterator asks with the DNSSEC OK bit from
// now on (Config.DNSSEC): answers are read and written under the keys of
// that mode, so those had without signatures never reach a validator.
func (s *Store) SetDNSSEC(on bool) { s.do.Store(on) }

// Delegation implements recurse.Cache.
func (s *Store) Delegation(zone string) (*recurse.Delegation, bool) {
	d, _, ok := s.delegation(zone)
	return d, ok
}

// delegation is Delegation with the time left of the entry.
func (s *Store) delegation(zone string) (*recurse.Delegation, time.Duration, bool) {
	key := DelegationKey(zone)
	b, ok := s.get(key, "delegation")
	if !ok {
		return nil, 0, false
	}
	d, stored, ttl, err := decodeDelegation(zone, b)
	if err != nil {
		s.rejected("delegation", err)
		return nil, 0, false
	}
	left := remaining(stored, ttl, s.now())
	if left <= 0 {
		s.m.reads.WithLabelValues("delegation", "miss").Inc()
		return nil, 0, false
	}
	s.m.reads.WithLabelValues("delegation", "hit").Inc()
	return d, left, true
}

// PutDelegation implements recurse.Cache.
func (s *Store) PutDelegation(d *recurse.Delegation, ttl time.Duration) {
	if ttl < time.Second {
		return
	}
	s.put(DelegationKey(d.Zone), encodeDelegation(d, s.now(), ttl), ttl)
}

// Answer implements recurse.Cache. The TTLs of the message are aged by
// the time since it was stored.
func (s *Store) Answer(name string, qtype uint16) (*dns.Msg, bool) {
	m, _, ok := s.answer(name, qtype)
	return m, ok
}

// answer is Answer with the time left of the entry.
func (s *Store) answer(name string, qtype uint16) (*dns.Msg, time.Duration, bool) {
	key := AnswerKey(name, qtype, s.do.Load())
	b, ok := s.get(key, "answer")
	if !ok {
		return nil, 0, false
	}
	m, stored, ttl, err := decodeAnswer(key, name, qtype, b)
	if err != nil {
		s.rejected("answer", err)
		return nil, 0, false
	}
	now := s.now()
	left := remaining(stored, ttl, now)
	if left <= 0 {
		s.m.reads.WithLabelValues("answer", "miss").Inc()
		return nil, 0, false
	}
	age(m, stored, now)
	s.m.reads.WithLabelValues("answer", "hit").Inc()
	return m, left, true
}

// PutAnswer implements recurse.Cache.
func (s *Store) PutAnswer(name string, qtype uint16, m *dns.Msg, ttl time.Duration) {
	if ttl < time.Second {
		return
	}
	// Packing sets the message's compression flag: pack a shallow copy,
	// the caller's message is shared with the in-memory tier.
	c := *m
	s.put(AnswerKey(name, qtype, s.do.Load()), encode(kindAnswer, &c, s.now(), ttl), ttl)
}

// get reads key within the Timeout; false on a miss or a failure,
// counted under kind.
func (s *Store) get(key, kind string) ([]byte, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	b, err := s.c.Get(ctx, key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		s.m.reads.WithLabelValues(kind, "miss").Inc()
		return nil, false
	case err != nil:
		s.m.reads.WithLabelValues(kind, "error").Inc()
		return nil, false
	}
	return b, true
}

// rejected counts and logs a value refused.
func (s *Store) rejected(kind string, err error) {
	s.m.reads.WithLabelValues(kind, "rejected").Inc()
	reason := RejectMalformed
	var re *RejectError
	if errors.As(err, &re) {
		reason = re.Reason
	}
	s.m.rejected.WithLabelValues(reason).Inc()
	logRefusal(s.log, &s.lastLog, err)
}

// logRefusal logs err, at most once a second: a planted or corrupt value
// read on every query would otherwise flood the log (the counts say how
// many).
func logRefusal(log *slog.Logger, last *atomic.Int64, err error) {
	now := time.Now().UnixNano()
	if prev := last.Load(); now-prev < int64(time.Second) || !last.CompareAndSwap(prev, now) {
		return
	}
	log.Warn("shared resolver state from Redis refused, served as a miss; further refusals within a second are only counted", "err", err)
}

// put queues a write of value under key for ttl; nil value: too large.
func (s *Store) put(key string, value []byte, ttl time.Duration) {
	if value == nil {
		s.m.writes.WithLabelValues("too_large").Inc()
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.pending.Add(1)
	select {
	case s.queue <- write{key: key, value: value, ttl: ttl}:
	default:
		s.pending.Add(-1)
		s.m.writes.WithLabelValues("dropped").Inc()
	}
}

// writeLoop sends the queued writes, up to writeBatch per pipeline,
// until Close.
func (s *Store) writeLoop() {
	defer close(s.stopped)
	batch := make([]write, 0, writeBatch)
	for {
		select {
		case w := <-s.queue:
			batch = append(batch[:0], w)
		case <-s.done:
			return
		}
	fill:
		for len(batch) < writeBatch {
			select {
			case w := <-s.queue:
				batch = append(batch, w)
			default:
				break fill
			}
		}
		s.send(batch)
	}
}

// send writes batch in one pipeline within the Timeout.
func (s *Store) send(batch []write) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	cmds, _ := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, w := range batch {
			p.Set(ctx, w.key, w.value, w.ttl)
		}
		return nil
	})
	for i := range batch {
		if i < len(cmds) && cmds[i].Err() == nil {
			s.m.writes.WithLabelValues("ok").Inc()
		} else {
			s.m.writes.WithLabelValues("error").Inc()
		}
	}
	s.pending.Add(-int64(len(batch)))
}

// Flush waits, up to ctx, until the writes queued so far are sent (or
// failed).
func (s *Store) Flush(ctx context.Context) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for s.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("redisstate: flush: %w", ctx.Err())
		case <-s.done:
			return errors.New("redisstate: flush: closed")
		case <-t.C:
		}
	}
	return nil
}

// Close stops the writes, waiting for the pipeline in flight; those still
// queued are dropped.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.done) })
	<-s.stopped // no pipeline runs once the caller closes the client
	return nil
}
