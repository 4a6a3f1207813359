package lookup

import (
	"context"
	"fmt"
	"time"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// resolveStep asks the resolver and turns its answer into a cache entry
// under the TTL policy.
type resolveStep struct {
	resolver Resolver
	policy   dnsmsg.Policy
	stale    time.Duration
	now      func() time.Time
	metrics  *metrics
}

func (s *resolveStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	s.metrics.resolves.Inc()
	ans, err := s.resolver.Resolve(ctx, q.Upstream())
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w: %w", ErrTimeout, ErrResolver, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrResolver, err)
	}
	ttl, cacheable := s.policy.CacheTTL(ans)
	st, err := dnsmsg.Prepare(ans, ttl, uint32(s.policy.MinTTL/time.Second), cacheable)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResolver, err)
	}
	now := s.now()
	e := &cache.Entry{StoredAt: now, TTL: ttl, Offsets: st.Offsets, Msg: st.Msg}
	e.StaleUntil = e.Expires()
	if cacheable && s.stale > 0 {
		e.StaleUntil = e.StaleUntil.Add(s.stale)
	}
	return &Result{Entry: e, Source: SourceResolver, Now: now, cacheable: cacheable}, nil
}
