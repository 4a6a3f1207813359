package lookup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// errClosed is wrapped by a lookup that reaches the resolver after Close.
var errClosed = errors.New("lookup: chain closed")

// coalesceStep makes identical concurrent misses share one call below it.
// The shared call runs detached from the first caller's cancellation, under
// its own timeout, so one impatient client cannot fail the others; each
// caller still stops waiting at its own deadline. The chain's Close
// cancels the shared calls and waits for them.
type coalesceStep struct {
	next    Handler
	timeout time.Duration
	group   singleflight.Group
	metrics *metrics
	// l1 and now, when set, let a call look in L1 before it asks below:
	// a miss that read the cache just before an identical call stored
	// its answer, and then found that call finished, is answered from
	// L1 rather than asking the resolver again.
	l1  batchStore
	now func() time.Time

	ctx    context.Context // ends at close
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	calls  sync.WaitGroup // shared calls in flight
}

func newCoalesceStep(next Handler, timeout time.Duration, l1 batchStore, now func() time.Time, m *metrics) *coalesceStep {
	ctx, cancel := context.WithCancel(context.Background())
	return &coalesceStep{next: next, timeout: timeout, metrics: m, l1: l1, now: now, ctx: ctx, cancel: cancel}
}

func (s *coalesceStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	ch := s.group.DoChan(q.Key, func() (any, error) {
		if res, ok := s.stored(ctx, q); ok {
			return res, nil
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: %w", ErrResolver, errClosed)
		}
		s.calls.Add(1)
		s.mu.Unlock()
		defer s.calls.Done()
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		defer context.AfterFunc(s.ctx, cancel)()
		return s.next.Lookup(callCtx, q)
	})
	select {
	case r := <-ch:
		if r.Shared {
			s.metrics.coalesced.Inc()
		}
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Result), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
}

// close cancels the shared calls in flight and waits for them; calls
// after it fail at once.
func (s *coalesceStep) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.calls.Wait()
}

// refreshKey marks the context of a refresh (prefetch): it must ask the
// resolver although the entry is still fresh.
type refreshKey struct{}

func withRefresh(ctx context.Context) context.Context {
	return context.WithValue(ctx, refreshKey{}, true)
}

// stored is q's fresh L1 entry, if L1 holds one and ctx is not a
// refresh's.
func (s *coalesceStep) stored(ctx context.Context, q *dnsmsg.Query) (*Result, bool) {
	if s.l1 == nil || ctx.Value(refreshKey{}) != nil {
		return nil, false
	}
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
