package ratelimit

import (
	"sync"
	"sync/atomic"
)

// shard is one lock's worth of buckets: an LRU of at most limit entries,
// kept in a slice with an intrusive doubly linked list, so a full shard
// recycles its oldest entry instead of allocating.
type shard struct {
	mu         sync.Mutex
	idx        map[key]int32
	ents       []entry
	head, tail int32 // most and least recently used; -1 when empty
	limit      int

	tracked                   atomic.Int64
	allowed, slipped, dropped atomic.Uint64

	_ [64]byte // keep neighbouring shards' locks off this cache line
}

// entry is one prefix's token bucket.
type entry struct {
	k          key
	tokens     float64
	last       int64 // nanoseconds since the Limiter's epoch
	prev, next int32
	slipCount  int32 // over-limit queries since the last slip, mod slip
}

func (s *shard) init(limit int) {
	s.idx = make(map[key]int32)
	s.head, s.tail = -1, -1
	s.limit = limit
}

// check debits k's bucket at time now and counts the result.
func (s *shard) check(l *limits, k key, now int64) Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.get(l, k, now)
	if elapsed := now - e.last; elapsed > 0 {
		// Time that runs backwards (or reads taken out of order by
		// concurrent callers) adds no tokens.
		e.tokens += float64(elapsed) * l.ratePerNs
		e.last = now
		if e.tokens >= l.burst {
			e.tokens = l.burst
			e.slipCount = 0
		}
	}
	if e.tokens >= 1 {
		e.tokens--
		s.allowed.Add(1)
		return Allow
	}
	if l.slip > 0 {
		// Like BIND: slip the first over-limit query, then every slip-th.
		first := e.slipCount == 0
		e.slipCount++
		if int(e.slipCount) >= l.slip {
			e.slipCount = 0
		}
		if first {
			s.slipped.Add(1)
			return Slip
		}
	}
	s.dropped.Add(1)
	return Drop
}

// get returns k's entry, made most recently used, creating it with a
// full bucket (and evicting the least recently used) if needed.
func (s *shard) get(l *limits, k key, now int64) *entry {
	if i, ok := s.idx[k]; ok {
		s.moveToFront(i)
		return &s.ents[i]
	}
	var i int32
	if len(s.ents) < s.limit {
		i = int32(len(s.ents))
		s.ents = append(s.ents, entry{})
		s.tracked.Add(1)
	} else {
		i = s.tail
		s.unlink(i)
		delete(s.idx, s.ents[i].k)
	}
	s.ents[i] = entry{k: k, tokens: l.burst, last: now}
	s.idx[k] = i
	s.pushFront(i)
	return &s.ents[i]
}

func (s *shard) moveToFront(i int32) {
	if s.head == i {
		return
	}
	s.unlink(i)
	s.pushFront(i)
}

func (s *shard) unlink(i int32) {
	e := &s.ents[i]
	if e.prev >= 0 {
		s.ents[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.ents[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
}

func (s *shard) pushFront(i int32) {
	e := &s.ents[i]
	e.prev, e.next = -1, s.head
	if s.head >= 0 {
		s.ents[s.head].prev = i
	} else {
		s.tail = i
	}
	s.head = i
}
