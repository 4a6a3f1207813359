package cache

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shardns/shardns/internal/redisopt"
)

// DefaultRedisTimeout is the per-call budget when RedisConfig.Timeout is 0.
const DefaultRedisTimeout = 50 * time.Millisecond

// RingHeartbeat is how often the Ring pings every shard. go-redis marks a
// shard down after 3 failed pings in a row and up again after 1 answered
// one, and re-hashes keys over the live shards each time.
const RingHeartbeat = 250 * time.Millisecond

// deleteBatch is how many DELs go in one pipeline, each batch with its own
// Timeout budget.
const deleteBatch = 128

// RedisConfig configures the Redis tier.
type RedisConfig struct {
	// Addrs are the shards (Ring) or the seed nodes (Cluster), host:port.
	Addrs []string
	// Timeout is the budget of each call, dial included (0:
	// DefaultRedisTimeout). A dead or frozen shard costs at most about this.
	Timeout time.Duration
	// Username is the ACL user every shard is logged in as ("": the
	// default user); it needs a Password.
	Username string
	// Password authenticates to every shard, if set.
	Password string
	// TLS, when set, makes every connection TLS with this client
	// configuration; each verifies the certificate against the host of the
	// address it dials.
	TLS *tls.Config
	// PoolSize is the connections per shard (0: go-redis's default).
	PoolSize int
	// MaxBatch bounds how many concurrent Gets to one shard go out as one
	// pipeline (0: DefaultMaxBatch; 1: every Get is its own call).
	MaxBatch int
	// Now is the clock used for expiries (nil: time.Now).
	Now func() time.Time
	// Registerer gets the tier's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Logger gets the entries refused on reading (nil: discarded).
	Logger *slog.Logger
}

// Redis is the shared tier (L2): entries in Redis, partitioned over shards
// by the hash tag of their key, with go-redis Ring (rendezvous hashing,
// dead shards dropped by a heartbeat) or Redis Cluster (hash slots). Calls
// never retry and never wait longer than Timeout: on the query path an
// error is a miss, and a slow one would stall the answer.
type Redis struct {
	ring    *redis.Ring
	cluster *redis.ClusterClient
	uc      redis.UniversalClient
	addrs   []string
	timeout time.Duration
	now     func() time.Time
	batch   *batcher // nil: one call per Get
	rejects *rejects
	scratch sync.Pool // *redisScratch
}

var _ Tier = (*Redis)(nil)

func (cfg *RedisConfig) defaults() error {
	if len(cfg.Addrs) == 0 {
		return errors.New("cache: redis: no addresses")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultRedisTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Username != "" && cfg.Password == "" {
		// go-redis would log in as the default user without a word.
		return fmt.Errorf("cache: redis: user %s without a password", cfg.Username)
	}
	if cfg.MaxBatch < 0 {
		return fmt.Errorf("cache: redis: MaxBatch %d is negative", cfg.MaxBatch)
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	return nil
}

// newRedis returns the tier over ring or cluster (the other is nil).
func newRedis(cfg RedisConfig, ring *redis.Ring, cluster *redis.ClusterClient) *Redis {
	r := &Redis{ring: ring, cluster: cluster, addrs: sortedCopy(cfg.Addrs), timeout: cfg.Timeout, now: cfg.Now,
		rejects: newRejects(cfg.Registerer, cfg.Logger)}
	if ring != nil {
		r.uc = ring
	} else {
		r.uc = cluster
	}
	if cfg.MaxBatch > 1 {
		r.batch = newBatcher(cfg.Timeout, cfg.MaxBatch, ring != nil)
	}
	return r
}

// noMaintNotifications turns off the maintenance-notification handshake,
// one round trip per new connection that plain Redis servers refuse.
func noMaintNotifications() *maintnotifications.Config {
	return &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}

// Open opens the shards of cfg as a Redis Cluster when cluster is set
// (NewCluster), else as a Ring (NewRing).
func Open(cluster bool, cfg RedisConfig) (*Redis, error) {
	if cluster {
		return NewCluster(cfg)
	}
	return NewRing(cfg)
}

// NewRing returns a Redis tier over a go-redis Ring of cfg.Addrs, each
// shard named by its address, so every frontend given the same addresses
// hashes a key to the same shard.
func NewRing(cfg RedisConfig) (*Redis, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	shards := make(map[string]string, len(cfg.Addrs))
	for _, a := range cfg.Addrs {
		if _, dup := shards[a]; dup {
			return nil, fmt.Errorf("cache: redis: shard %s listed twice", a)
		}
		shards[a] = a
	}
	t := cfg.Timeout
	ring := redis.NewRing(&redis.RingOptions{
		Addrs: shards,
		NewClient: func(opt *redis.Options) *redis.Client {
			opt.MaintNotificationsConfig = noMaintNotifications()
			opt.Dialer = redisopt.Dialer(opt.DialTimeout, opt.TLSConfig)
			return redis.NewClient(opt)
		},
		HeartbeatFrequency: RingHeartbeat,
		HeartbeatFn: func(ctx context.Context, c *redis.Client) bool {
			ctx, cancel := context.WithTimeout(ctx, t)
			defer cancel()
			err := c.Ping(ctx).Err()
			return err == nil || errors.Is(err, redis.ErrPoolTimeout)
		},
		Username:              cfg.Username,
		Password:              cfg.Password,
		TLSConfig:             cfg.TLS,
		MaxRetries:            -1,
		DialTimeout:           t,
		DialerRetries:         1,
		ReadTimeout:           t,
		WriteTimeout:          t,
		ContextTimeoutEnabled: true,
		PoolSize:              cfg.PoolSize,
		PoolTimeout:           t,
		PipelinePoolSize:      -1,
		DisableIdentity:       true,
	})
	return newRedis(cfg, ring, nil), nil
}

// NewCluster returns a Redis tier over a Redis Cluster reached through the
// seed nodes cfg.Addrs. Calls go to the master of the key's slot (replicas
// are for failover, not reads: a replica read could serve an entry a flush
// just removed). Redirects are not followed on the query path (a MOVED
// reply is an error, counted as a miss), and every failed call reloads the
// slot map in the background (see failed), so after a failover the
// promoted replica is used within a reload.
func NewCluster(cfg RedisConfig) (*Redis, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	t := cfg.Timeout
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                    slices.Clone(cfg.Addrs),
		Dialer:                   redisopt.Dialer(t, cfg.TLS),
		MaxRedirects:             -1,
		Username:                 cfg.Username,
		Password:                 cfg.Password,
		TLSConfig:                cfg.TLS,
		MaxRetries:               -1,
		DialTimeout:              t,
		DialerRetries:            1,
		ReadTimeout:              t,
		WriteTimeout:             t,
		ContextTimeoutEnabled:    true,
		PoolSize:                 cfg.PoolSize,
		PoolTimeout:              t,
		PipelinePoolSize:         -1,
		DisableIdentity:          true,
		MaintNotificationsConfig: noMaintNotifications(),
	})
	return newRedis(cfg, nil, c), nil
}

// failed is called after every failed call on the query path. On a Cluster
// it asks go-redis to reload the slot map in the background (one reload at
// a time, at most one per 200 ms). go-redis reloads by itself only on MOVED,
// ASK and READONLY replies and once a minute: without this, the slots of a
// master that died would be sent to it, and fail, for up to a minute after
// its replica had taken them over.
func (r *Redis) failed() {
	if r.cluster != nil {
		r.cluster.ReloadState(context.Background())
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// Get returns the entry under key: ErrMiss if Redis holds none or it is
// past StaleUntil, an error wrapping ErrCorrupt (a *CorruptError) for
// bytes that Decode refuses, which are counted and logged, any other error
// for a failed call. Concurrent Gets to one shard
// share a pipeline (see batcher); each returns within its own deadline and
// the Timeout budget.
func (r *Redis) Get(ctx context.Context, key string) (*Entry, error) {
	if r.batch == nil || r.cluster != nil {
		// The batcher bounds a Ring Get by the budget itself, without a
		// timer per call; a Cluster may load its slot map first.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	b, err := r.get(ctx, key)
	return r.entry(key, b, err)
}

// entry is what Get returns for key, given the read's bytes and error.
func (r *Redis) entry(key string, b []byte, err error) (*Entry, error) {
	return r.entryAt(key, b, err, r.now())
}

// entryAt is entry at the instant now.
func (r *Redis) entryAt(key string, b []byte, err error, now time.Time) (*Entry, error) {
	if errors.Is(err, redis.Nil) {
		return nil, ErrMiss
	}
	if err != nil {
		r.failed()
		return nil, fmt.Errorf("cache: redis get %s: %w", key, err)
	}
	e, err := Decode(key, b)
	if err != nil {
		r.rejects.note(key, err, func() string { return r.shardName(key) })
		return nil, fmt.Errorf("cache: redis get %s: %w", key, err)
	}
	if !now.Before(e.StaleUntil) {
		return nil, ErrMiss
	}
	return e, nil
}

// shardName is the address of the shard that holds key, for a log line,
// or "" when it cannot be had within the Timeout.
func (r *Redis) shardName(key string) string {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	addr, _ := r.ShardFor(ctx, key)
	return addr
}

// GetMany reads keys together, each with what Get would return in es[i]
// and errs[i]: every shard's keys go out in its next batch, as one MGET
// with the keys of concurrent Gets, and GetMany waits for them all (a
// frozen shard holds up the others' keys by at most the Timeout budget).
// It reports false, having read nothing, on a tier that reads key by key
// (a Cluster, or no batching).
func (r *Redis) GetMany(ctx context.Context, keys []string, es []*Entry, errs []error) bool {
	if !r.batches() {
		return false
	}
	sc, _ := r.scratch.Get().(*redisScratch)
	if sc == nil {
		sc = new(redisScratch)
	}
	cs, got := sc.cs[:0], sc.got[:0]
	for _, key := range keys {
		c, err := r.ring.GetShardClientForKey(key)
		cs, got = append(cs, c), append(got, getResult{err: err})
	}
	r.batch.getMany(ctx, cs, keys, got)
	now := r.now()
	for i, key := range keys {
		es[i], errs[i] = r.entryAt(key, got[i].val, got[i].err, now)
	}
	clear(cs)
	clear(got)
	sc.cs, sc.got = cs[:0], got[:0]
	r.scratch.Put(sc)
	return true
}

// redisScratch is what a GetMany reuses: each key's shard and bytes.
type redisScratch struct {
	cs  []*redis.Client
	got []getResult
}

// batches says whether r reads and writes several keys per call through
// its shards' loops (GetMany, SetAsync): a Ring with batching on.
func (r *Redis) batches() bool { return r.batch != nil && r.ring != nil }

// get reads key's bytes: through the shard's batcher, or with one call.
func (r *Redis) get(ctx context.Context, key string) ([]byte, error) {
	if r.batch == nil {
		return r.uc.Get(ctx, key).Bytes()
	}
	var c *redis.Client
	var err error
	if r.ring != nil {
		c, err = r.ring.GetShardClientForKey(key)
	} else {
		c, err = r.cluster.MasterForKey(ctx, key)
	}
	if err != nil {
		return nil, err
	}
	return r.batch.get(ctx, c, key)
}

// Set stores e under key with a Redis expiry at e.StaleUntil. An entry
// already past it is not stored.
func (r *Redis) Set(ctx context.Context, key string, e *Entry) error {
	ttl := e.StaleUntil.Sub(r.now()).Truncate(time.Millisecond)
	if ttl <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.uc.Set(ctx, key, e.Encode(), ttl).Err(); err != nil {
		r.failed()
		return fmt.Errorf("cache: redis set %s: %w", key, err)
	}
	return nil
}

// Add stores e under key as Set does, but only where Redis holds no value
// under key (SET NX, atomic against every writer of the fleet): it never
// replaces an entry, fresh or stale. It reports whether it stored e.
func (r *Redis) Add(ctx context.Context, key string, e *Entry) (bool, error) {
	ttl := e.StaleUntil.Sub(r.now()).Truncate(time.Millisecond)
	if ttl <= 0 {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ok, err := r.uc.SetNX(ctx, key, e.Encode(), ttl).Result()
	if err != nil {
		r.failed()
		return false, fmt.Errorf("cache: redis set nx %s: %w", key, err)
	}
	return ok, nil
}

// SetAsync stores e under key as Set does, but returns at once: the write
// joins its shard's next pipeline of writes, and done gets its outcome
// (nil, or an error as Set returns it) on another goroutine. It reports
// false, having done nothing, on a tier that writes key by key (a
// Cluster, or no batching).
func (r *Redis) SetAsync(key string, e *Entry, done func(error)) bool {
	if !r.batches() {
		return false
	}
	ttl := e.StaleUntil.Sub(r.now()).Truncate(time.Millisecond)
	if ttl <= 0 {
		done(nil)
		return true
	}
	c, err := r.ring.GetShardClientForKey(key)
	if err != nil {
		done(fmt.Errorf("cache: redis set %s: %w", key, err))
		return true
	}
	r.batch.set(c, key, e.Encode(), ttl, func(err error) {
		if err != nil {
			r.failed()
			err = fmt.Errorf("cache: redis set %s: %w", key, err)
		}
		done(err)
	})
	return true
}

// Delete removes keys, one DEL each (keys may live on different shards),
// pipelined in batches that each get the Timeout budget.
func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	for len(keys) > 0 {
		n := min(len(keys), deleteBatch)
		if err := r.deleteBatch(ctx, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func (r *Redis) deleteBatch(ctx context.Context, keys []string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if len(keys) == 1 {
		if err := r.uc.Del(ctx, keys[0]).Err(); err != nil {
			r.failed()
			return fmt.Errorf("cache: redis del %s: %w", keys[0], err)
		}
		return nil
	}
	_, err := r.uc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, k)
		}
		return nil
	})
	if err != nil {
		r.failed()
		return fmt.Errorf("cache: redis del %d keys: %w", len(keys), err)
	}
	return nil
}

// Close stops the batchers (waiting for a pipeline in flight, at most the
// Timeout budget), then closes every connection and stops the Ring's
// heartbeat. Gets in flight return an error at once.
func (r *Redis) Close() error {
	if r.batch != nil {
		r.batch.close()
	}
	if err := r.uc.Close(); err != nil {
		return fmt.Errorf("cache: redis close: %w", err)
	}
	return nil
}

// Shards returns the configured addresses, sorted: the Ring's shards, or
// a Cluster's seed nodes.
func (r *Redis) Shards() []string { return slices.Clone(r.addrs) }

// ForEachShard calls fn concurrently on every live shard: each Ring shard
// that is not marked down, or each Cluster master. It returns the first
// error. The shard clients carry the query-path timeouts: fn should use
// commands that answer quickly (INFO, DBSIZE, SCAN pages, FLUSHDB ASYNC).
func (r *Redis) ForEachShard(ctx context.Context, fn func(ctx context.Context, addr string, c *redis.Client) error) error {
	each := func(ctx context.Context, c *redis.Client) error {
		addr := c.Options().Addr
		if err := fn(ctx, addr, c); err != nil {
			return &shardError{addr: addr, err: err}
		}
		return nil
	}
	var err error
	if r.ring != nil {
		err = r.ring.ForEachShard(ctx, each)
	} else {
		err = r.cluster.ForEachMaster(ctx, each)
	}
	var se *shardError
	if err != nil && !errors.As(err, &se) {
		return fmt.Errorf("cache: redis shards: %w", err)
	}
	return err
}

// shardError is what fn returned for one shard in ForEachShard.
type shardError struct {
	addr string
	err  error
}

func (e *shardError) Error() string { return "cache: shard " + e.addr + ": " + e.err.Error() }
func (e *shardError) Unwrap() error { return e.err }

// Ping reports whether the tier can serve: nil if at least one shard
// answers PING within the Timeout.
func (r *Redis) Ping(ctx context.Context) error {
	var ok atomic.Bool
	var mu sync.Mutex
	var firstErr error
	err := r.ForEachShard(ctx, func(ctx context.Context, addr string, c *redis.Client) error {
		ctx, cancel := context.WithTimeout(ctx, r.timeout)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", addr, err)
			}
			mu.Unlock()
			return nil
		}
		ok.Store(true)
		return nil
	})
	switch {
	case ok.Load():
		return nil
	case err != nil:
		return fmt.Errorf("cache: redis ping: %w", err)
	case firstErr != nil:
		return fmt.Errorf("cache: redis ping: no shard answers: %w", firstErr)
	default:
		return errors.New("cache: redis ping: no live shard")
	}
}

// Client is the go-redis client under the tier (a Ring or a ClusterClient),
// for the fleet's side traffic: stats and invalidation. It keeps the
// query path's short timeouts and honours each call's deadline.
func (r *Redis) Client() redis.UniversalClient { return r.uc }

// IsCluster reports whether the tier is a Redis Cluster.
func (r *Redis) IsCluster() bool { return r.cluster != nil }
