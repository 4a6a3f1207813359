package lookup

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// coalesceStep makes identical concurrent misses share one call below it.
// The shared call runs detached from the first caller's cancellation, under
// its own timeout, so one impatient client cannot fail the others; each
// caller still stops waiting at its own deadline.
type coalesceStep struct {
	next    Handler
	timeout time.Duration
	group   singleflight.Group
	metrics *metrics
	// l1 and now, when set, let a call look in L1 before it asks below:
	// a miss that read the cache just before an identical call stored
	// its answer, and then found that call finished, is answered from
	// L1 rather than asking the resolver again.
	l1  l1Reader
	now func() time.Time
}

func (s *coalesceStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	ctx, cancel := arm(ctx) // from here on the caller waits for the resolver
	defer cancel()
	ch := s.group.DoChan(q.Key, func() (any, error) {
		if res, ok := s.stored(ctx, q); ok {
			return res, nil
		}
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
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
	res, _, ok := freshL1(s.l1, []byte(q.Key), s.now)
	if !ok {
		return nil, false
	}
	return &res, true
}
