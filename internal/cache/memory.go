package cache

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Defaults for a zero MemoryConfig.
const (
	DefaultMemoryEntries = 100_000
	DefaultMemoryBytes   = 64 << 20
)

// memEntryOverhead is what one entry costs beyond its key and encoded
// size: the Entry and item structs, the list element, the map slot and
// allocator rounding. TestMemoryBytesMatchHeap measures it: with it, Bytes
// is within a few percent of the heap a full L1 takes (about 430 bytes an
// entry for answers of 50 to 280 bytes).
const memEntryOverhead = 240

// maxMemShards is the most segments a Memory is split into; a Memory with
// few entries uses fewer, so that each segment's share of the bounds stays
// meaningful (at least minShardEntries entries).
const (
	maxMemShards    = 16
	minShardEntries = 64
)

// MemoryConfig sets the bounds of a Memory tier.
type MemoryConfig struct {
	// MaxEntries bounds the number of entries (<= 0: DefaultMemoryEntries).
	MaxEntries int
	// MaxBytes bounds the bytes held, counted as key length plus
	// Entry.Size plus a small fixed overhead (<= 0: DefaultMemoryBytes).
	MaxBytes int64
	// MaxAge caps how long an entry is kept, however long its StaleUntil
	// (0: no cap). It keeps frontends' L1s within MaxAge of each other.
	MaxAge time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Memory is the in-process tier (L1): a least-recently-used cache bounded
// by entry count and by bytes, split into segments by key hash so that
// concurrent lookups rarely wait on one lock. It stores the *Entry it is
// given; entries are immutable.
type Memory struct {
	shards []*memShard
	seed   maphash.Seed
	maxAge time.Duration
	now    func() time.Time
}

var _ Tier = (*Memory)(nil)

type memItem struct {
	key     string // as stored, for GetBytes
	e       *Entry
	expires time.Time // min(e.StaleUntil, stored + MaxAge)
	cost    int64
}

type memShard struct {
	mu         sync.Mutex
	lru        *simplelru.LRU[string, memItem]
	bytes      int64
	maxBytes   int64
	maxEntries int
	evicted    uint64 // entries removed to make room, under mu
}

// NewMemory returns an empty Memory with cfg's bounds.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMemoryEntries
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMemoryBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	n := maxMemShards
	for n > 1 && cfg.MaxEntries/n < minShardEntries {
		n /= 2
	}
	m := &Memory{
		shards: make([]*memShard, n),
		seed:   maphash.MakeSeed(),
		maxAge: cfg.MaxAge,
		now:    cfg.Now,
	}
	for i := range m.shards {
		// Shares that add up to the bounds exactly.
		entries := cfg.MaxEntries / n
		if i < cfg.MaxEntries%n {
			entries++
		}
		bytes := cfg.MaxBytes / int64(n)
		if int64(i) < cfg.MaxBytes%int64(n) {
			bytes++
		}
		s := &memShard{maxBytes: bytes, maxEntries: max(entries, 1)}
		lru, err := simplelru.NewLRU(s.maxEntries, func(_ string, it memItem) {
			s.bytes -= it.cost // called under s.mu by every removal
		})
		if err != nil {
			panic("cache: " + err.Error()) // size is positive
		}
		s.lru = lru
		m.shards[i] = s
	}
	return m
}

func (m *Memory) shard(key string) *memShard {
	if len(m.shards) == 1 {
		return m.shards[0]
	}
	return m.shards[maphash.String(m.seed, key)%uint64(len(m.shards))]
}

// Get returns the entry under key, or ErrMiss if there is none or it has
// passed its L1 expiry (which also removes it).
func (m *Memory) Get(_ context.Context, key string) (*Entry, error) {
	s := m.shard(key)
	now := m.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.lru.Get(key)
	if !ok {
		return nil, ErrMiss
	}
	if !now.Before(it.expires) {
		s.lru.Remove(key)
		return nil, ErrMiss
	}
	return it.e, nil
}

// GetBytes is Get for the query path, with the key in bytes the caller
// reuses: it returns the entry and the key as this tier holds it, so the
// caller needs no string of its own. key is not retained.
func (m *Memory) GetBytes(key []byte) (*Entry, string, error) {
	var s *memShard
	if len(m.shards) == 1 {
		s = m.shards[0]
	} else {
		s = m.shards[maphash.Bytes(m.seed, key)%uint64(len(m.shards))]
	}
	// The string is used for map lookups under s.mu and kept by nothing:
	// the LRU keeps the keys it was given by Set.
	k := unsafe.String(unsafe.SliceData(key), len(key))
	now := m.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.lru.Get(k)
	if !ok {
		return nil, "", ErrMiss
	}
	if !now.Before(it.expires) {
		s.lru.Remove(k)
		return nil, "", ErrMiss
	}
	return it.e, it.key, nil
}

// Set stores e under key until min(e.StaleUntil, now+MaxAge), evicting
// least recently used entries until both bounds hold. An entry already past
// StaleUntil, or larger than a segment's byte share, is not stored.
func (m *Memory) Set(_ context.Context, key string, e *Entry) error {
	m.set(key, e, false)
	return nil
}

// Add is Set where key holds no entry (none, or one past its L1 expiry):
// it never replaces one. It reports whether it stored e.
func (m *Memory) Add(key string, e *Entry) bool { return m.set(key, e, true) }

// set stores e under key, unless absent is set and key holds an entry;
// it reports whether it stored e.
func (m *Memory) set(key string, e *Entry, absent bool) bool {
	now := m.now()
	if !now.Before(e.StaleUntil) {
		return false
	}
	it := memItem{key: key, e: e, expires: e.StaleUntil, cost: int64(len(key) + e.Size() + memEntryOverhead)}
	if m.maxAge > 0 {
		if capped := now.Add(m.maxAge); capped.Before(it.expires) {
			it.expires = capped
		}
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if absent {
		if old, ok := s.lru.Peek(key); ok && now.Before(old.expires) {
			return false
		}
	}
	s.lru.Remove(key) // so the old item's cost leaves through the callback
	if it.cost > s.maxBytes {
		return false
	}
	if s.lru.Add(key, it) {
		s.evicted++
	}
	s.bytes += it.cost
	for s.bytes > s.maxBytes {
		if _, _, ok := s.lru.RemoveOldest(); !ok {
			break
		}
		s.evicted++
	}
	return true
}

// Delete removes keys.
func (m *Memory) Delete(_ context.Context, keys ...string) error {
	for _, k := range keys {
		s := m.shard(k)
		s.mu.Lock()
		s.lru.Remove(k)
		s.mu.Unlock()
	}
	return nil
}

// Len is the number of entries held, expired ones not yet removed included.
func (m *Memory) Len() int {
	n := 0
	for _, s := range m.shards {
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

// Bytes is the number of bytes held, as counted against MaxBytes.
func (m *Memory) Bytes() int64 {
	var n int64
	for _, s := range m.shards {
		s.mu.Lock()
		n += s.bytes
		s.mu.Unlock()
	}
	return n
}

// Evictions is the number of entries removed to make room for others
// (either bound reached) since the Memory was made; entries that expired,
// were replaced, deleted or purged do not count.
func (m *Memory) Evictions() uint64 {
	var n uint64
	for _, s := range m.shards {
		s.mu.Lock()
		n += s.evicted
		s.mu.Unlock()
	}
	return n
}

// Purge removes every entry.
func (m *Memory) Purge() {
	for _, s := range m.shards {
		s.mu.Lock()
		s.lru.Purge()
		s.mu.Unlock()
	}
}
