// Package queue is shardns's reliable work queue on its own Redis, in the
// classic pattern: task IDs wait in a pending list; a worker moves one
// atomically to a processing list (BLMOVE) and takes a lease on it; when it
// is done the task moves to completed, and when it keeps failing, to dead
// with its last error. A reaper returns the tasks of workers whose lease ran
// out (crashed, frozen, cut off) to pending. Tasks are delivered at least
// once: a task is never lost, and is run twice only when a lease expired
// while its first run was still going.
//
// Keys, for queue <q> (all in one hash slot, so a Redis Cluster works too):
//
//	q:{<q>}:pending      list of task IDs; workers take from the right
//	q:{<q>}:processing   list of task IDs being worked on
//	q:{<q>}:completed    list of finished task IDs, newest first (bounded)
//	q:{<q>}:dead         list of task IDs that failed -max-attempts times
//	q:{<q>}:leases       sorted set: task ID → lease deadline (Unix ms)
//	q:{<q>}:task:<id>    hash: the task (see Task)
//	q:{<q>}:job:<id>     hash: the job (see Job)
//	q:{<q>}:jobs         sorted set: job ID → created (Unix ms)
//
// Every move between lists happens in one Lua script together with the
// bookkeeping it implies, so the lists and the counters never disagree.
package queue

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shardns/shardns/internal/redisopt"
)

// Defaults of Config.
const (
	DefaultName        = "warm"
	DefaultLease       = 30 * time.Second
	DefaultMaxAttempts = 3
	// DefaultKeep is how long a finished task's hash and a finished job's
	// hash stay readable.
	DefaultKeep = 24 * time.Hour
	// maxCompleted bounds the completed list; the task hashes expire on
	// their own.
	maxCompleted = 100_000
)

// Config says which Redis holds the queue and how it behaves.
type Config struct {
	// Client is the queue's Redis. It must not be a cache shard: those
	// evict keys, and a queue must not lose any.
	Client redis.UniversalClient
	// Name is the queue's name, <q> in its keys (default "warm").
	Name string
	// Lease is how long a worker may hold a task before the reaper gives it
	// to another worker (default 30 s). A handler gets half of it.
	Lease time.Duration
	// MaxAttempts is how many failed runs send a task to dead (default 3).
	MaxAttempts int
	// Keep is how long finished tasks and jobs stay readable (default 24 h).
	Keep time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Auth is how Open logs in to the queue's Redis and whether over TLS
	// (New does not use it).
	Auth redisopt.Auth
}

// Queue is one named queue.
type Queue struct {
	rdb         redis.UniversalClient
	name        string
	prefix      string // q:{<name>}:
	lease       time.Duration
	maxAttempts int
	keep        time.Duration
	now         func() time.Time
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// New returns the queue cfg describes. It does not touch Redis.
func New(cfg Config) (*Queue, error) {
	if cfg.Client == nil {
		return nil, errors.New("queue: no Redis client")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if !validName.MatchString(cfg.Name) {
		return nil, fmt.Errorf("queue: bad queue name %q (letters, digits, _ . - only)", cfg.Name)
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Lease < 100*time.Millisecond {
		return nil, fmt.Errorf("queue: lease %v is too short", cfg.Lease)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Queue{
		rdb: cfg.Client, name: cfg.Name, prefix: "q:{" + cfg.Name + "}:",
		lease: cfg.Lease, maxAttempts: cfg.MaxAttempts, keep: cfg.Keep, now: cfg.Now,
	}, nil
}

// Name is the queue's name.
func (q *Queue) Name() string { return q.name }

// Key returns the Redis key of one of the queue's lists or sets by its
// last part: "pending", "processing", "completed", "dead", "leases", "jobs".
func (q *Queue) Key(part string) string { return q.prefix + part }

// TaskKey is the Redis key of a task's hash.
func (q *Queue) TaskKey(id string) string { return q.prefix + "task:" + id }

// JobKey is the Redis key of a job's hash.
func (q *Queue) JobKey(id string) string { return q.prefix + "job:" + id }

// Lease is how long a claimed task is held before the reaper takes it back.
func (q *Queue) Lease() time.Duration { return q.lease }

// Client is the queue's Redis client.
func (q *Queue) Client() redis.UniversalClient { return q.rdb }

func (q *Queue) ms(t time.Time) int64 { return t.UnixMilli() }

// Open connects to the queue's Redis at addr (host:port, or a redis:// or
// rediss:// URL), logged in and over TLS as cfg.Auth says (each of its
// settings, when set, overrides the URL's), and returns the queue cfg
// describes (cfg.Client is set here). Close the queue's Client when done.
func Open(addr string, cfg Config) (*Queue, error) {
	opt := &redis.Options{Addr: addr}
	if strings.Contains(addr, "://") {
		var err error
		if opt, err = redis.ParseURL(addr); err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
	}
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = 2 * time.Second
	opt.WriteTimeout = 2 * time.Second
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	cfg.Auth.Apply(opt)
	if opt.Username != "" && opt.Password == "" {
		return nil, fmt.Errorf("queue: user %s without a password", opt.Username)
	}
	cfg.Client = redis.NewClient(opt)
	q, err := New(cfg)
	if err != nil {
		cfg.Client.Close()
	}
	return q, err
}
