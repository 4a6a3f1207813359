package lookup

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// errClosed is wrapped by a lookup that reaches the resolver after Close.
var errClosed = errors.New("lookup: chain closed")

// runnerIdle is about how long a runner waits for another call before it
// exits (between one and two runnerIdle). A chain answering a stream of
// misses reuses the stacks its runners have grown: a new goroutine per
// miss grows (and copies) its stack on every call, down through the
// resolver and its socket, about a tenth of dnsd's CPU on misses. An idle
// chain keeps no runner for long.
const runnerIdle = 100 * time.Millisecond

// endedSlots is how many ended calls coalesceStep remembers, at most:
// far more than can end between a miss's cache read and its call, which
// is when one matters. A key whose slot another took since is asked
// below once more, as a miss is.
const endedSlots = 1 << 12

// coalesceStep makes identical concurrent misses share one call below it.
// The shared call runs detached from its callers' contexts, under its own
// timeout, so one impatient client cannot fail the others; each caller
// still stops waiting at its own deadline. The chain's Close cancels the
// shared calls and waits for them.
//
// A shared call runs on one of the step's runners: goroutines that take
// the next call when they finish one, and exit once idle for runnerIdle
// or at Close. A call that finds none idle starts a new one.
type coalesceStep struct {
	next    Handler
	timeout time.Duration
	metrics *metrics
	// l1 and now, when set, let a call look in L1 before it asks below:
	// a miss that read the cache just before an identical call stored
	// its answer, and then found that call finished, is answered from
	// L1 rather than asking the resolver again. Only a key in ended
	// is looked up so: every other miss has just read L1.
	l1    batchStore
	now   func() time.Time
	seed  maphash.Seed
	ended [endedSlots]atomic.Uint64 // hashes of the keys of calls ended lately, by their low bits

	ctx     context.Context // ends at close
	cancel  context.CancelFunc
	calls   chan *flight // unbuffered: an idle runner takes the next call
	mu      sync.Mutex
	flights map[string]*flight // the calls under way, by key
	closed  bool
	runners sync.WaitGroup
	timers  sync.Pool // *time.Timer, stopped: a waiter's budget
}

// flight is one shared call: the lookups of its key wait for done.
type flight struct {
	q       *dnsmsg.Query
	refresh bool // the first caller's is a refresh (withRefresh)
	// Set before done is closed.
	res    *Result
	err    error
	shared bool // another lookup joined the call
	dups   int  // lookups that joined it; guarded by the step's mu
	done   chan struct{}
}

func newCoalesceStep(next Handler, timeout time.Duration, l1 batchStore, now func() time.Time, m *metrics) *coalesceStep {
	ctx, cancel := context.WithCancel(context.Background())
	s := &coalesceStep{next: next, timeout: timeout, metrics: m, l1: l1, now: now, seed: maphash.MakeSeed(), ctx: ctx, cancel: cancel,
		calls: make(chan *flight), flights: make(map[string]*flight)}
	s.timers.New = func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return t
	}
	return s
}

func (s *coalesceStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	return s.lookupUntil(ctx, q, time.Time{})
}

// lookupUntil is Lookup, giving up at until too (unless it is zero) with
// a timer of the step's pool rather than a context of its own.
func (s *coalesceStep) lookupUntil(ctx context.Context, q *dnsmsg.Query, until time.Time) (*Result, error) {
	s.mu.Lock()
	f, joined := s.flights[q.Key]
	switch {
	case joined:
		f.dups++
		s.mu.Unlock()
	case s.closed:
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", ErrResolver, errClosed)
	default:
		f = &flight{q: q, refresh: ctx.Value(refreshKey{}) != nil, done: make(chan struct{})}
		s.flights[q.Key] = f
		s.runners.Add(1) // under mu: close waits for it
		s.mu.Unlock()
		s.start(f)
	}
	var expired <-chan time.Time
	if !until.IsZero() {
		t := s.timers.Get().(*time.Timer)
		t.Reset(time.Until(until))
		defer s.timers.Put(t)
		defer t.Stop() // before Put: a pooled timer is stopped, its channel empty
		expired = t.C
	}
	select {
	case <-f.done:
		if f.shared {
			s.metrics.coalesced.Inc()
		}
		return f.res, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	case <-expired:
		return nil, fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded)
	}
}

// budgeted is a step that can be given a deadline apart from its context
// (lookupUntil): a lookup's budget then costs no context of its own.
type budgeted interface {
	lookupUntil(ctx context.Context, q *dnsmsg.Query, until time.Time) (*Result, error)
}

// lookupUntil asks h for q, giving up at until unless it is zero.
func lookupUntil(h Handler, ctx context.Context, q *dnsmsg.Query, until time.Time) (*Result, error) {
	if b, ok := h.(budgeted); ok {
		return b.lookupUntil(ctx, q, until)
	}
	if !until.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, until)
		defer cancel()
	}
	return h.Lookup(ctx, q)
}

// start hands f to an idle runner, or to a new one if none is idle. The
// caller has counted a runner for f in s.runners.
func (s *coalesceStep) start(f *flight) {
	select {
	case s.calls <- f:
		s.runners.Done() // the idle runner is counted already
	default:
		go s.run(f)
	}
}

// run is a runner: it makes the call f, then the calls handed to it while
// it waits, until it has waited runnerIdle without one or the step
// closes. Its timer is reset once per runnerIdle, not once per call.
func (s *coalesceStep) run(f *flight) {
	defer s.runners.Done()
	idle := time.NewTimer(runnerIdle)
	defer idle.Stop()
	for {
		s.fly(f)
		busy := true // a call since the timer was set
		for f = nil; f == nil; {
			select {
			case f = <-s.calls:
			case <-idle.C:
				if !busy {
					return
				}
				busy = false
				idle.Reset(runnerIdle)
			case <-s.ctx.Done():
				return
			}
		}
	}
}

// fly makes the shared call f and hands its outcome to the lookups
// waiting for it.
func (s *coalesceStep) fly(f *flight) {
	h := maphash.String(s.seed, f.q.Key)
	f.res, f.err = s.call(f, h)
	s.mu.Lock()
	// Before the key leaves flights, so that a miss that finds it gone
	// finds it ended.
	s.ended[h%endedSlots].Store(h)
	delete(s.flights, f.q.Key)
	f.shared = f.dups > 0
	s.mu.Unlock()
	close(f.done)
}

// call is the shared call f, whose key hashes to h. Its context carries
// the step's cancellation and timeout, none of a caller's.
func (s *coalesceStep) call(f *flight, h uint64) (*Result, error) {
	q := f.q
	if s.l1 != nil && !f.refresh && s.ended[h%endedSlots].Load() == h {
		if res, ok := s.stored(q); ok {
			return res, nil
		}
	}
	if s.ctx.Err() != nil {
		return nil, fmt.Errorf("%w: %w", ErrResolver, errClosed)
	}
	callCtx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	return s.next.Lookup(callCtx, q)
}

// close cancels the shared calls in flight and waits for them and for
// the runners; calls after it fail at once.
func (s *coalesceStep) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.runners.Wait()
}

// refreshKey marks the context of a refresh (prefetch): it must ask the
// resolver although the entry is still fresh.
type refreshKey struct{}

func withRefresh(ctx context.Context) context.Context {
	return context.WithValue(ctx, refreshKey{}, true)
}

// stored is q's fresh L1 entry, if L1 holds one.
func (s *coalesceStep) stored(q *dnsmsg.Query) (*Result, bool) {
	e, _, ok := s.l1.GetL1([]byte(q.Key))
	if !ok {
		return nil, false
	}
	now := s.now()
	if !e.Fresh(now) {
		return nil, false
	}
	return &Result{Entry: e, Source: SourceL1, Now: now}, true
}
