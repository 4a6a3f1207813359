package lookup

import (
	"time"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// L1Handler is a chain that can answer from its in-process cache alone,
// for the query path's common case: the chain Build returns is one.
type L1Handler interface {
	Handler
	// LookupL1 answers q when the in-process cache holds a fresh entry
	// for it, with everything Lookup does for such a hit (metrics,
	// prefetch or the fleet's hit counter), and fills res as Lookup
	// would. Otherwise it returns false, having done nothing Lookup would
	// not also do, and the caller calls Lookup.
	//
	// key is q's cache key in bytes; LookupL1 does not retain it, and
	// ignores q.Key and q.Name. On a hit it sets q.Key to the key as the
	// cache holds it and q.Name to the name in key form (lowercased), so
	// neither aliases key.
	LookupL1(key []byte, q *dnsmsg.Query, res *Result) bool
}

var _ L1Handler = (*metricsStep)(nil)

// l1Reader is a Store with an in-process tier it can ask alone
// (cache.Layered).
type l1Reader interface {
	GetL1(key []byte) (*cache.Entry, string, bool)
}

// l1Step is a step that can answer a fresh L1 hit without a context.
type l1Step interface {
	lookupL1(key []byte, q *dnsmsg.Query, res *Result) bool
}

// freshL1 is the answer from l1's entry under key, and the key as l1
// holds it, when that entry is fresh at now().
func freshL1(l1 l1Reader, key []byte, now func() time.Time) (Result, string, bool) {
	e, k, ok := l1.GetL1(key)
	if !ok {
		return Result{}, "", false
	}
	t := now()
	if !e.Fresh(t) {
		return Result{}, "", false
	}
	return Result{Entry: e, Source: SourceL1, Now: t}, k, true
}

func (s *cacheStep) lookupL1(key []byte, q *dnsmsg.Query, res *Result) bool {
	if s.l1 == nil {
		return false
	}
	r, k, ok := freshL1(s.l1, key, s.now)
	if !ok {
		return false
	}
	q.Key = k
	q.Name, _ = cache.KeyName(k)
	*res = r
	return true
}

func (s *prefetchStep) lookupL1(key []byte, q *dnsmsg.Query, res *Result) bool {
	next, ok := s.next.(l1Step)
	if !ok || !next.lookupL1(key, q, res) {
		return false
	}
	if s.due(q.Key, res) {
		s.start(q)
	}
	return true
}

func (s *hotStep) lookupL1(key []byte, q *dnsmsg.Query, res *Result) bool {
	next, ok := s.next.(l1Step)
	if !ok || !next.lookupL1(key, q, res) {
		return false
	}
	s.hot.Hit(q.Key, res.Entry)
	return true
}
