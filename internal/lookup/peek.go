package lookup

import (
	"context"
	"errors"
	"time"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// Peeked is one question of a Peek and what the cache held for it. A
// question Peek did not answer goes on through LookupPeeked, which starts
// from what Peek saw rather than reading the cache again.
type Peeked struct {
	// Query is the question. A Peek of every tier reads its Key.
	Query *dnsmsg.Query
	// Key is the question's cache key in bytes (dnsmsg.Key), for a Peek
	// of L1 alone, which reads it in place of Query.Key and does not keep
	// it. On a hit that Peek sets Query.Key to the key as the cache holds
	// it, and Query.Name to the name in key form (lowercased), so neither
	// aliases Key and a hit allocates nothing.
	Key []byte

	// L1Missed says a Peek of L1 alone just missed Query: a Peek of
	// every tier whose questions all have it reads the shared tier
	// alone (cache.Layered.GetManyL2) rather than ask L1 again.
	L1Missed bool

	Hit    bool   // a fresh entry: Result is the answer, the observers were told
	Result Result // set when Hit

	got  cache.Got // what the cache held
	read bool      // got is what every tier held: LookupPeeked does not read again
}

// Peek reads the cache for every question of ps at once: with l1Only, the
// in-process tier alone (no I/O and no allocation: it may run on the
// goroutine reading a socket); otherwise L1, then one read per Redis shard
// for the keys L1 lacks (cache.Layered.GetMany). Each question with a
// fresh entry gets Hit and its Result, and the chain's observers hear of
// it as they hear of a hit Lookup finds: the metrics, and the fleet's hit
// counter or the in-process prefetch. A hit costs no timer: the cache
// bounds its own reads. A question without Hit goes on through
// LookupPeeked. A store that cannot read a batch is read by LookupPeeked.
func (c *Chain) Peek(ctx context.Context, ps []Peeked, l1Only bool) {
	if c.batch == nil {
		return
	}
	if l1Only {
		// No clock read for a miss, the reader's usual case with L1
		// off: a hit of L1 alone takes well under the duration
		// histogram's first bucket, and is observed as taking none.
		for i := range ps {
			c.peekL1(&ps[i], time.Time{})
		}
		return
	}
	start := time.Now()
	sc := c.scratch.Get().(*peekScratch)
	defer c.putScratch(sc)
	keys, got := sc.keys[:0], sc.got[:0]
	l1Missed := true
	for i := range ps {
		keys = append(keys, ps[i].Query.Key)
		got = append(got, cache.Got{})
		l1Missed = l1Missed && ps[i].L1Missed
	}
	sc.keys, sc.got = keys, got
	read := c.batch.GetMany
	if l1Missed {
		read = c.batch.GetManyL2
	}
	if !read(ctx, keys, got) {
		for i := range ps {
			ps[i].Key = []byte(ps[i].Query.Key)
			c.peekL1(&ps[i], start)
			ps[i].Key = nil
		}
		return
	}
	now := c.now()
	took := time.Since(start).Seconds()
	for i := range ps {
		p, g := &ps[i], got[i]
		c.countReadError(keys[i], g.Err)
		p.got, p.read = g, true
		if g.Err == nil && g.Entry.Fresh(now) {
			p.Hit, p.Result = true, Result{Entry: g.Entry, Source: Source(g.Source), Now: now}
			c.observe(p.Query, &p.Result, took)
		}
	}
}

// peekScratch is what a Peek of every tier reuses: the keys and what the
// cache held for them.
type peekScratch struct {
	keys []string
	got  []cache.Got
}

func (c *Chain) putScratch(sc *peekScratch) {
	clear(sc.keys) // holds no key or entry in the pool
	clear(sc.got)
	c.scratch.Put(sc)
}

// peekL1 answers p from a fresh L1 entry, if there is one; start is when
// the Peek began, or zero for a hit observed as taking no time.
func (c *Chain) peekL1(p *Peeked, start time.Time) {
	e, k, ok := c.batch.GetL1(p.Key)
	if !ok {
		return
	}
	now := c.now()
	if !e.Fresh(now) {
		return
	}
	p.Query.Key = k
	p.Query.Name, _ = cache.KeyName(k)
	p.Hit, p.Result = true, Result{Entry: e, Source: SourceL1, Now: now}
	took := 0.0
	if !start.IsZero() {
		took = time.Since(start).Seconds()
	}
	c.observe(p.Query, &p.Result, took)
}

// Lookup answers q: from the cache, or through the steps below it.
func (c *Chain) Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error) {
	return c.LookupPeeked(ctx, &Peeked{Query: q}, 0)
}

// LookupPeeked answers p.Query as Lookup does, going on from what Peek saw
// of it without reading the cache again (a Peeked that Peek did not fill
// is read first; one Peek answered is its Result). With budget set, the
// lookup gives up budget after its start (or at ctx's own deadline, if
// sooner), as a query's client does, with the timer armed only once the
// cache has missed: a hit waits for nothing the cache does not bound.
func (c *Chain) LookupPeeked(ctx context.Context, p *Peeked, budget time.Duration) (*Result, error) {
	start := time.Now()
	q := p.Query
	if p.Hit { // observed by Peek
		return &p.Result, nil
	}
	got := p.got
	if !p.read && c.store != nil {
		got.Entry, got.Source, got.Err = c.store.Get(ctx, q.Key)
		c.countReadError(q.Key, got.Err)
	}
	now := c.now()
	if got.Err == nil && got.Entry != nil && got.Entry.Fresh(now) {
		res := &Result{Entry: got.Entry, Source: Source(got.Source), Now: now}
		c.observe(q, res, time.Since(start).Seconds())
		return res, nil
	}
	var until time.Time
	if budget > 0 {
		until = start.Add(budget)
	}
	res, err := lookupUntil(c.below, ctx, q, until)
	if (err != nil || Failure(res.Entry)) && got.Entry != nil && !Failure(got.Entry) {
		if now = c.now(); got.Entry.Usable(now) {
			res, err = &Result{Entry: got.Entry, Source: SourceStale, Now: now}, nil
		}
	}
	took := time.Since(start).Seconds()
	if err != nil {
		reason := "resolver"
		if errors.Is(err, ErrTimeout) {
			reason = "timeout"
		}
		c.metrics.failures.WithLabelValues(reason).Inc()
		c.metrics.duration.WithLabelValues("failure").Observe(took)
		return nil, err
	}
	c.observe(q, res, took)
	return res, nil
}

// observe tells the chain's observers of an answer to q that took the
// given seconds: the metrics count it by source; a hit from the cache
// counts for the fleet's prefetch, or may start a refresh in this
// process; an answer from the resolver counts as a miss for the fleet.
func (c *Chain) observe(q *dnsmsg.Query, res *Result, seconds float64) {
	c.metrics.count(res, seconds)
	switch res.Source {
	case SourceL1, SourceRedis:
		if c.hot != nil {
			c.hot.Hit(q.Key, res.Entry)
		} else if c.pf != nil {
			c.pf.hit(q, res)
		}
	case SourceResolver:
		if c.hot != nil {
			c.hot.Miss(q.Key)
		}
	}
}

// countReadError counts and logs a cache read that failed (not a miss).
func (c *Chain) countReadError(key string, err error) {
	if err != nil && !errors.Is(err, cache.ErrMiss) {
		c.metrics.cacheErrors.WithLabelValues("get").Inc()
		c.log.Debug("cache read failed", "key", key, "err", err)
	}
}
