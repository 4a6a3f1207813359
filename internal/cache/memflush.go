package cache

import "strings"

// DeleteFunc removes every entry whose key match reports true for and
// returns how many it removed. It visits every key, one segment locked at
// a time, so it costs a scan of the whole tier: fine for an operator's
// flush, not for the query path.
func (m *Memory) DeleteFunc(match func(key string) bool) int {
	n := 0
	for _, s := range m.shards {
		s.mu.Lock()
		for _, k := range s.lru.Keys() {
			if match(k) {
				s.lru.Remove(k)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// DeleteName removes every entry of name (every type, class, DO and CD
// variant) and returns how many it removed. name is in key form
// (lowercased, final dot).
func (m *Memory) DeleteName(name string) int {
	prefix := tagKey(name)
	return m.DeleteFunc(func(k string) bool {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
		n, ok := KeyName(k)
		return ok && n == name
	})
}

// DeleteSuffix removes every entry of suffix and of every name under it
// (see UnderName) and returns how many it removed.
func (m *Memory) DeleteSuffix(suffix string) int {
	return m.DeleteFunc(func(k string) bool {
		n, ok := KeyName(k)
		return ok && UnderName(n, suffix)
	})
}

// Invalidate applies inv: DeleteSuffix or DeleteName of inv.Name.
func (m *Memory) Invalidate(inv Invalidation) int {
	if inv.Suffix {
		return m.DeleteSuffix(inv.Name)
	}
	return m.DeleteName(inv.Name)
}

// Inspect returns the entry under key without counting it as used, or
// ErrMiss when there is none or it has passed its L1 expiry.
func (m *Memory) Inspect(key string) (*Inspection, error) {
	s := m.shard(key)
	now := m.now()
	s.mu.Lock()
	it, ok := s.lru.Peek(key)
	s.mu.Unlock()
	if !ok || !now.Before(it.expires) {
		return nil, ErrMiss
	}
	return &Inspection{Key: key, Tier: SourceL1, Entry: it.e, Size: it.e.Size()}, nil
}
