package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
)

// Source says which tier answered a Layered Get.
type Source string

// The tiers a hit can come from.
const (
	SourceL1    Source = "l1"
	SourceRedis Source = "redis"
)

// Layered asks an in-process tier (L1) before a shared one (L2), and
// copies L2 hits into L1. Either tier may be nil.
type Layered struct {
	l1, l2  Tier
	mem     *Memory   // l1, when it is a Memory
	scratch sync.Pool // *layeredScratch
}

// NewLayered returns l1 in front of l2; either may be nil.
func NewLayered(l1, l2 Tier) *Layered {
	if isNilTier(l1) {
		l1 = nil
	}
	if isNilTier(l2) {
		l2 = nil
	}
	mem, _ := l1.(*Memory)
	return &Layered{l1: l1, l2: l2, mem: mem}
}

// GetL1 asks the in-process tier alone, when it is a Memory, with the key
// in bytes (see Memory.GetBytes). It returns the entry and the key as the
// tier holds it; false for a miss, an error, or no such tier.
func (l *Layered) GetL1(key []byte) (*Entry, string, bool) {
	if l.mem == nil {
		return nil, "", false
	}
	e, k, err := l.mem.GetBytes(key)
	return e, k, err == nil
}

// isNilTier catches a typed nil pointer passed as a Tier (e.g. a nil
// *Memory when L1 is turned off), which would otherwise not compare equal
// to nil.
func isNilTier(t Tier) bool {
	switch v := t.(type) {
	case nil:
		return true
	case *Memory:
		return v == nil
	case *Redis:
		return v == nil
	}
	return false
}

// Got is one key's outcome of GetMany: what Get returns for it.
type Got struct {
	Entry  *Entry
	Source Source
	Err    error
}

// GetMany is Get for several keys at once, with out[i] for keys[i]: L1 is
// asked for each, then L2 for those L1 lacks in one batched read (see
// Redis.GetMany). It reports false, having read nothing, when L2 cannot
// read a batch.
func (l *Layered) GetMany(ctx context.Context, keys []string, out []Got) bool {
	return l.getMany(ctx, keys, out, true)
}

// GetManyL2 is GetMany for keys that L1 was just asked for, and lacked
// (GetL1): it reads L2 alone, copying its hits into L1 as GetMany does.
// An L1 that GetL1 cannot ask (not a Memory) is asked as GetMany asks it.
func (l *Layered) GetManyL2(ctx context.Context, keys []string, out []Got) bool {
	return l.getMany(ctx, keys, out, false)
}

// layeredScratch is what a GetMany reuses: the keys L2 is asked for, where
// each is in the caller's keys, and what L2 held.
type layeredScratch struct {
	keys []string
	at   []int
	es   []*Entry
	errs []error
}

func (l *Layered) getMany(ctx context.Context, keys []string, out []Got, askL1 bool) bool {
	r, ok := l.batchL2()
	if !ok {
		return false
	}
	sc, _ := l.scratch.Get().(*layeredScratch)
	if sc == nil {
		sc = new(layeredScratch)
	}
	defer l.putScratch(sc)
	l2Keys, l2At := sc.keys[:0], sc.at[:0]
	var l1Errs []error // by index in keys, made on the first L1 failure
	for i, key := range keys {
		var l1Err error
		if l.l1 != nil && (askL1 || l.mem == nil) {
			e, err := l.l1.Get(ctx, key)
			if err == nil {
				out[i] = Got{Entry: e, Source: SourceL1}
				continue
			}
			if !errors.Is(err, ErrMiss) {
				l1Err = fmt.Errorf("cache: l1: %w", err)
				if l1Errs == nil {
					l1Errs = make([]error, len(keys))
				}
				l1Errs[i] = l1Err
			}
		}
		if r == nil {
			out[i] = Got{Err: cmp.Or(l1Err, ErrMiss)}
			continue
		}
		l2Keys, l2At = append(l2Keys, key), append(l2At, i)
	}
	sc.keys, sc.at = l2Keys, l2At
	if len(l2Keys) == 0 {
		return true
	}
	es, errs := append(sc.es[:0], make([]*Entry, len(l2Keys))...), append(sc.errs[:0], make([]error, len(l2Keys))...)
	sc.es, sc.errs = es, errs
	r.GetMany(ctx, l2Keys, es, errs)
	for j, i := range l2At {
		var l1Err error
		if l1Errs != nil {
			l1Err = l1Errs[i]
		}
		e, src, err := l.fromL2(ctx, keys[i], es[j], errs[j], l1Err)
		out[i] = Got{Entry: e, Source: src, Err: err}
	}
	return true
}

func (l *Layered) putScratch(sc *layeredScratch) {
	clear(sc.keys) // holds no key or entry in the pool
	clear(sc.es)
	clear(sc.errs)
	sc.keys, sc.at, sc.es, sc.errs = sc.keys[:0], sc.at[:0], sc.es[:0], sc.errs[:0]
	l.scratch.Put(sc)
}

// batchL2 is L2 when it reads and writes in batches (Redis.batches), nil
// when there is no L2; ok false when there is one that does not.
func (l *Layered) batchL2() (r *Redis, ok bool) {
	if l.l2 == nil {
		return nil, true
	}
	r, _ = l.l2.(*Redis)
	return r, r != nil && r.batches()
}

// Get returns the entry under key and the tier that held it. It returns
// ErrMiss only when every tier missed; an L2 failure (timeout, shard
// down, corrupt bytes) after an L1 miss is returned as an error that is
// not ErrMiss, for the caller to count and then treat as a miss.
func (l *Layered) Get(ctx context.Context, key string) (*Entry, Source, error) {
	var l1Err error
	if l.l1 != nil {
		e, err := l.l1.Get(ctx, key)
		if err == nil {
			return e, SourceL1, nil
		}
		if !errors.Is(err, ErrMiss) {
			l1Err = fmt.Errorf("cache: l1: %w", err)
		}
	}
	if l.l2 == nil {
		if l1Err != nil {
			return nil, "", l1Err
		}
		return nil, "", ErrMiss
	}
	e, err := l.l2.Get(ctx, key)
	return l.fromL2(ctx, key, e, err, l1Err)
}

// fromL2 is Get's answer for key once L1 missed (with l1Err, if it
// failed) and L2 returned e and err: an L2 hit is copied into L1.
func (l *Layered) fromL2(ctx context.Context, key string, e *Entry, err, l1Err error) (*Entry, Source, error) {
	switch {
	case err == nil:
		if l.l1 != nil {
			_ = l.l1.Set(ctx, key, e) // best effort; L1 applies its own cap
		}
		return e, SourceRedis, nil
	case errors.Is(err, ErrMiss):
		if l1Err != nil {
			return nil, "", l1Err
		}
		return nil, "", ErrMiss
	default:
		return nil, "", fmt.Errorf("cache: l2: %w", errors.Join(err, l1Err))
	}
}

// Set stores e in L1, then in L2. It returns L2's error, if any, after L1
// has been written (or L1's, if only L1 failed).
func (l *Layered) Set(ctx context.Context, key string, e *Entry) error {
	var l1Err, l2Err error
	if l.l1 != nil {
		if err := l.l1.Set(ctx, key, e); err != nil {
			l1Err = fmt.Errorf("cache: l1: %w", err)
		}
	}
	if l.l2 != nil {
		if err := l.l2.Set(ctx, key, e); err != nil {
			l2Err = fmt.Errorf("cache: l2: %w", err)
		}
	}
	return errors.Join(l2Err, l1Err)
}

// Add stores e where key holds no entry, for an answer that must never
// replace one (a resolver's SERVFAIL): in L2 with Redis.Add, then in L1
// with Memory.Add when L2 stored it, failed, or is not there. An entry
// held in either tier, fresh or stale, stays. It reports whether L2 (or,
// without L2, L1) stored e. An L1 that is not a Memory is not written.
func (l *Layered) Add(ctx context.Context, key string, e *Entry) (bool, error) {
	stored := true
	var err error
	if r, ok := l.l2.(*Redis); ok {
		if stored, err = r.Add(ctx, key, e); err != nil {
			err = fmt.Errorf("cache: l2: %w", err)
		}
	} else if l.l2 != nil {
		return false, errors.New("cache: l2 cannot add without replacing")
	}
	if (stored || err != nil) && l.mem != nil {
		added := l.mem.Add(key, e)
		if l.l2 == nil {
			stored = added
		}
	}
	return stored && err == nil, err
}

// SetAsync stores e in L1 at once and in L2 without waiting for it (see
// Redis.SetAsync); done gets the outcome as Set returns it, then. It
// reports false, having done nothing, when L2 cannot write that way.
func (l *Layered) SetAsync(ctx context.Context, key string, e *Entry, done func(error)) bool {
	r, ok := l.batchL2()
	if !ok {
		return false
	}
	var l1Err error
	if l.l1 != nil {
		if err := l.l1.Set(ctx, key, e); err != nil {
			l1Err = fmt.Errorf("cache: l1: %w", err)
		}
	}
	if r == nil {
		done(l1Err)
		return true
	}
	return r.SetAsync(key, e, func(err error) {
		if err != nil {
			err = fmt.Errorf("cache: l2: %w", err)
		}
		done(errors.Join(err, l1Err))
	})
}

// Delete removes keys from L2, then from L1: in that order a concurrent
// Get can only copy a deleted entry back into L1 if it read L2 before the
// delete reached it. L1 is cleared even when L2 fails.
func (l *Layered) Delete(ctx context.Context, keys ...string) error {
	var l1Err, l2Err error
	if l.l2 != nil {
		if err := l.l2.Delete(ctx, keys...); err != nil {
			l2Err = fmt.Errorf("cache: l2: %w", err)
		}
	}
	if l.l1 != nil {
		if err := l.l1.Delete(ctx, keys...); err != nil {
			l1Err = fmt.Errorf("cache: l1: %w", err)
		}
	}
	return errors.Join(l2Err, l1Err)
}

// L1 returns the in-process tier, or nil.
func (l *Layered) L1() Tier { return l.l1 }

// L2 returns the shared tier, or nil.
func (l *Layered) L2() Tier { return l.l2 }
