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
}

func (s *coalesceStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	ctx, cancel := arm(ctx) // from here on the caller waits for the resolver
	defer cancel()
	ch := s.group.DoChan(q.Key, func() (any, error) {
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
