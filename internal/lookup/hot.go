package lookup

import (
	"context"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// HitCounter counts cache hits for the fleet's prefetch (prefetch.Counter):
// with one, the chain leaves refreshing to the work queue instead of
// refreshing in this process.
type HitCounter interface {
	Hit(key string, e *cache.Entry)
	Miss(key string)
}

// hotStep tells the fleet's hit counter about every hit from the cache and
// every answer the resolver had to give.
type hotStep struct {
	next Handler // the cache step
	hot  HitCounter
}

func (s *hotStep) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	res, err := s.next.Lookup(ctx, q)
	if err != nil {
		return res, err
	}
	switch res.Source {
	case SourceL1, SourceRedis:
		s.hot.Hit(q.Key, res.Entry)
	case SourceResolver:
		s.hot.Miss(q.Key)
	}
	return res, nil
}
