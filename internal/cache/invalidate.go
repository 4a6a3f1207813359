package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/redisopt"
)

// InvalidateChannel is the Redis pub/sub channel on which a flush is
// announced to every frontend, so that each drops its L1 copies at once
// instead of serving them until L1's MaxAge.
const InvalidateChannel = "shardns:invalidate"

// Bounds of the invalidation messages and their subscribers.
const (
	maxInvalidation   = 2048             // bytes of one message; longer ones are dropped
	seenInvalidations = 4096             // message IDs remembered to drop repeats
	subDialTimeout    = time.Second      // one dial of a subscriber connection
	subHealthInterval = time.Second      // a quiet subscriber pings this often
	publishTimeout    = 2 * time.Second  // bound of one PublishInvalidation
	subscribeTimeout  = 2 * time.Second  // bound of the first SUBSCRIBE
	maxNameText       = 4*255 + 2        // presentation-format bytes of the longest name
	subChannelSize    = 256              // messages buffered per subscriber connection
	subSendTimeout    = 10 * time.Second // a full buffer drops a message after this
)

// Invalidation is one flush announced to every frontend: drop every L1
// entry of Name, or with Suffix of Name and every name under it. ID is
// random; a subscriber that hears it from several shards applies it once.
type Invalidation struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Suffix bool   `json:"suffix,omitempty"`
}

// NewInvalidation returns the invalidation of name (in key form:
// lowercased, final dot) with a fresh ID.
func NewInvalidation(name string, suffix bool) Invalidation {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return Invalidation{ID: hex.EncodeToString(b[:]), Name: name, Suffix: suffix}
}

// ParseInvalidation reads a message from InvalidateChannel. It refuses
// anything but a JSON object with an ID and a name ending in a dot, within
// size bounds.
func ParseInvalidation(b []byte) (Invalidation, error) {
	var inv Invalidation
	if len(b) > maxInvalidation {
		return inv, fmt.Errorf("cache: invalidation of %d bytes", len(b))
	}
	if err := json.Unmarshal(b, &inv); err != nil {
		return Invalidation{}, fmt.Errorf("cache: invalidation: %w", err)
	}
	switch {
	case inv.ID == "" || len(inv.ID) > 64:
		return Invalidation{}, errors.New("cache: invalidation without a valid id")
	case inv.Name == "" || len(inv.Name) > maxNameText || inv.Name[len(inv.Name)-1] != '.':
		return Invalidation{}, fmt.Errorf("cache: invalidation of bad name %q", inv.Name)
	}
	return inv, nil
}

// PublishInvalidation announces inv on every live shard (a Cluster
// broadcasts by itself, so there it is published once): a subscriber hears
// it as long as one shard it listens to is up. It fails only when no shard
// took it.
func (r *Redis) PublishInvalidation(ctx context.Context, inv Invalidation) error {
	payload, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("cache: invalidation: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if r.cluster != nil {
		if err := r.cluster.Publish(ctx, InvalidateChannel, payload).Err(); err != nil {
			return fmt.Errorf("cache: publish invalidation: %w", err)
		}
		return nil
	}
	var sent atomic.Int32
	err = r.ForEachShard(ctx, func(ctx context.Context, _ string, c *redis.Client) error {
		if err := c.Publish(ctx, InvalidateChannel, payload).Err(); err != nil {
			return err
		}
		sent.Add(1)
		return nil
	})
	if sent.Load() > 0 {
		return nil
	}
	if err == nil {
		err = errors.New("no live shard")
	}
	return fmt.Errorf("cache: publish invalidation: %w", err)
}

// Subscription receives invalidations until Close.
type Subscription struct {
	fn      func(Invalidation)
	log     *slog.Logger
	clients []*redis.Client
	pubsubs []*redis.PubSub
	wg      sync.WaitGroup
	once    sync.Once

	mu   sync.Mutex
	seen map[string]struct{}
	ring []string // the last seenInvalidations IDs, oldest overwritten
	next int
}

// SubscribeInvalidations calls fn once for each invalidation published on
// InvalidateChannel, one call at a time. On a Ring it listens on every
// configured shard, each over its own connection that reconnects by itself
// when its shard dies and comes back; on a Cluster it listens on one node
// and moves when that node fails. Messages that do not parse are logged and
// dropped. Close stops it.
func (r *Redis) SubscribeInvalidations(fn func(Invalidation), log *slog.Logger) *Subscription {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Subscription{fn: fn, log: log, seen: make(map[string]struct{}, seenInvalidations), ring: make([]string, seenInvalidations)}
	ctx, cancel := context.WithTimeout(context.Background(), subscribeTimeout)
	defer cancel()
	if r.cluster != nil {
		s.listen(r.cluster.Subscribe(ctx, InvalidateChannel))
		return s
	}
	opt := r.ring.Options()
	for _, addr := range r.addrs {
		c := redis.NewClient(&redis.Options{
			Addr:                     addr,
			Username:                 opt.Username,
			Password:                 opt.Password,
			DB:                       opt.DB,
			TLSConfig:                opt.TLSConfig,
			Dialer:                   redisopt.Dialer(subDialTimeout, opt.TLSConfig),
			DialTimeout:              subDialTimeout,
			DialerRetries:            1,
			WriteTimeout:             subDialTimeout,
			MaxRetries:               -1,
			PoolSize:                 1,
			DisableIdentity:          true,
			MaintNotificationsConfig: noMaintNotifications(),
		})
		s.clients = append(s.clients, c)
		// A shard that is down now is subscribed to when it comes back.
		s.listen(c.Subscribe(ctx, InvalidateChannel))
	}
	return s
}

// listen reads ps's messages until it is closed.
func (s *Subscription) listen(ps *redis.PubSub) {
	s.pubsubs = append(s.pubsubs, ps)
	ch := ps.Channel(
		redis.WithChannelHealthCheckInterval(subHealthInterval),
		redis.WithChannelSize(subChannelSize),
		redis.WithChannelSendTimeout(subSendTimeout),
	)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for msg := range ch {
			s.deliver([]byte(msg.Payload))
		}
	}()
}

// deliver applies one message unless its ID was seen already.
func (s *Subscription) deliver(payload []byte) {
	inv, err := ParseInvalidation(payload)
	if err != nil {
		s.log.Warn("dropped an invalidation", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.seen[inv.ID]; dup {
		return
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.seen, old)
	}
	s.ring[s.next] = inv.ID
	s.next = (s.next + 1) % len(s.ring)
	s.seen[inv.ID] = struct{}{}
	s.fn(inv)
}

// Close stops listening and waits for the listeners to end.
func (s *Subscription) Close() error {
	var errs []error
	s.once.Do(func() {
		for _, ps := range s.pubsubs {
			if err := ps.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		s.wg.Wait()
		for _, c := range s.clients {
			if err := c.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cache: close subscription: %w", err)
	}
	return nil
}
