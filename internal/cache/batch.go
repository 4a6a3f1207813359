package cache

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// DefaultMaxBatch is the most GETs one pipeline carries when
// RedisConfig.MaxBatch is 0.
const DefaultMaxBatch = 128

// errClosed is returned by a Get on a closed tier.
var errClosed = errors.New("redis tier closed")

// batcher sends concurrent GETs to one shard as one pipeline: a group-commit
// loop per shard client takes whatever has queued while its previous
// pipeline was in flight (at most max), so a lone Get goes out at once and
// a busy shard gets one round trip for many keys. One loop per shard, not
// per tier: a frozen shard holds up its own keys only, never those of the
// others, which go-redis's Ring and Cluster pipelines would wait for.
//
// Each request carries a deadline: the tier's budget from when it was
// queued, or its caller's deadline if that is sooner. A pipeline lasts
// until the earliest budget among its requests (with the latest, a request
// queued behind a frozen pipeline could wait that one's budget and then
// most of a later one's; a caller's own shorter deadline does not cut the
// others' call short: that caller returns at its context's end). So a
// loop stalls at most a budget, and a request still queued when its
// deadline passes is answered with context.DeadlineExceeded without being
// sent: a caller waits no longer than its deadline, with no timer of its
// own. A caller whose context ends earlier returns at once.
type batcher struct {
	timeout time.Duration
	max     int
	// mget sends a batch as one MGET rather than a pipeline of GETs:
	// one command for Redis to parse and run, one reply to read. Only
	// where every key of a batch lives on one server in one keyspace (a
	// Ring shard); Cluster refuses keys of several hash slots.
	mget bool

	ctx    context.Context // canceled by close: stops loops and pipelines
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards writes to queues and closed
	queues atomic.Pointer[map[*redis.Client]*shardQueues]
	closed bool

	reqs sync.Pool // *getReq

	calls, keys atomic.Uint64 // calls to Redis and the keys they carried
	setCalls    atomic.Uint64 // pipelines of writes sent
}

// getReq is one caller's GETs to one shard: a single key (get), or a
// GetMany's keys of that shard, answered together once on done. A
// request's keys all go out in one call, so a GetMany costs its shard one
// queue entry and one wake-up, whatever its number of keys.
type getReq struct {
	ctx      context.Context
	keys     []string
	out      []getResult   // out[i] answers keys[i]
	at       []int         // getMany: out[i] is the caller's result at[i]
	deadline time.Time     // the sooner of budget and the caller's deadline
	budget   time.Time     // the tier's budget from when it was queued
	done     chan struct{} // capacity 1: the loop never blocks on it
}

type getResult struct {
	val []byte
	err error // redis.Nil for an absent key
}

func newBatcher(timeout time.Duration, maxBatch int, mget bool) *batcher {
	ctx, cancel := context.WithCancel(context.Background())
	b := &batcher{timeout: timeout, max: maxBatch, mget: mget, ctx: ctx, cancel: cancel}
	b.queues.Store(&map[*redis.Client]*shardQueues{})
	b.reqs.New = func() any { return &getReq{done: make(chan struct{}, 1)} }
	return b
}

// shardQueues are the queues of one shard's loops: one for reads, one
// for writes, so that a slow write never holds up a read.
type shardQueues struct {
	gets chan *getReq
	sets chan *setReq
}

// queue returns the queues of c's loops, starting the loops on first use.
func (b *batcher) queue(c *redis.Client) (*shardQueues, error) {
	if q, ok := (*b.queues.Load())[c]; ok {
		return q, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errClosed
	}
	old := *b.queues.Load()
	if q, ok := old[c]; ok {
		return q, nil
	}
	q := &shardQueues{gets: make(chan *getReq, b.max), sets: make(chan *setReq, setQueueLen)}
	m := maps.Clone(old)
	m[c] = q
	b.queues.Store(&m)
	b.wg.Add(2)
	go b.run(c, q.gets)
	go b.runSets(c, q.sets)
	return q, nil
}

// get returns the value of key on shard c, or redis.Nil, or the error of
// the call or of ctx.
func (b *batcher) get(ctx context.Context, c *redis.Client, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	budget, deadline := b.deadlines(ctx)
	req := b.newReq(ctx, budget, deadline)
	req.keys = append(req.keys, key)
	req.out = append(req.out, getResult{})
	res, mine := req.out, true
	if b.enqueue(ctx, c, req) {
		res, mine = b.await(ctx, req)
	}
	val, err := res[0].val, res[0].err
	if mine {
		b.release(req)
	}
	return val, err
}

// getMany reads keys together, keys[i] from shard cs[i] (nil: skipped,
// out[i] left as it is): each shard's keys join its next batch as one
// request (of at most max keys: more make several), and getMany returns once every one is answered, within the
// same deadline a get has. out[i] is keys[i]'s result.
func (b *batcher) getMany(ctx context.Context, cs []*redis.Client, keys []string, out []getResult) {
	budget, deadline := b.deadlines(ctx)
	shards := make([]*redis.Client, 0, 8) // the shards a read spans: on the stack
	reqs := make([]*getReq, 0, 8)
	for i, key := range keys {
		c := cs[i]
		if c == nil {
			continue
		}
		j := len(shards) - 1 // the shard's last request, if it has room
		for j >= 0 && shards[j] != c {
			j--
		}
		if j < 0 || len(reqs[j].keys) == b.max {
			j = len(shards)
			shards, reqs = append(shards, c), append(reqs, b.newReq(ctx, budget, deadline))
		}
		r := reqs[j]
		r.keys, r.out, r.at = append(r.keys, key), append(r.out, getResult{}), append(r.at, i)
	}
	queued := make([]bool, len(reqs))
	for j, r := range reqs {
		queued[j] = b.enqueue(ctx, shards[j], r)
	}
	for j, r := range reqs {
		res, mine := r.out, true
		if queued[j] {
			res, mine = b.await(ctx, r)
		}
		for k, i := range r.at {
			out[i] = res[k]
		}
		if mine {
			b.release(r)
		}
	}
}

// deadlines are a read's budget from now and its deadline: the sooner of
// the budget and ctx's deadline.
func (b *batcher) deadlines(ctx context.Context) (budget, deadline time.Time) {
	budget = time.Now().Add(b.timeout)
	deadline = budget
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return budget, deadline
}

// newReq is an empty request from the pool, with its deadlines.
func (b *batcher) newReq(ctx context.Context, budget, deadline time.Time) *getReq {
	req := b.reqs.Get().(*getReq)
	req.ctx, req.deadline, req.budget = ctx, deadline, budget
	return req
}

// enqueue queues req for shard c's next batch and reports whether it did;
// when it could not (ctx ended, the tier closed), every key of req is
// answered with that error in req.out.
func (b *batcher) enqueue(ctx context.Context, c *redis.Client, req *getReq) bool {
	q, err := b.queue(c)
	if err == nil {
		select {
		case q.gets <- req:
			return true
		case <-ctx.Done():
			err = ctx.Err()
		case <-b.ctx.Done():
			err = errClosed
		}
	}
	for i := range req.out {
		req.out[i] = getResult{err: err}
	}
	return false
}

// await is the results of a queued request, with mine true: the caller
// releases req once it has read them. When ctx ends or the tier closes
// first, it is a new slice holding that error for each key, with mine
// false: the request stays with the loop, which may still write to it.
func (b *batcher) await(ctx context.Context, req *getReq) (_ []getResult, mine bool) {
	var err error
	select {
	case <-req.done:
		return req.out, true
	case <-ctx.Done():
		err = ctx.Err()
	case <-b.ctx.Done():
		err = errClosed
	}
	res := make([]getResult, len(req.keys))
	for i := range res {
		res[i] = getResult{err: err}
	}
	return res, false
}

// release returns req to the pool, holding no key, value or context.
func (b *batcher) release(req *getReq) {
	clear(req.out)
	clear(req.keys)
	req.ctx, req.keys, req.out, req.at = nil, req.keys[:0], req.out[:0], req.at[:0]
	req.deadline, req.budget = time.Time{}, time.Time{}
	b.reqs.Put(req)
}

// run is the loop of one shard client.
func (b *batcher) run(c *redis.Client, q chan *getReq) {
	defer b.wg.Done()
	batch := make([]*getReq, 0, b.max)
	sc := &sendScratch{}
	conn := &loopConn{c: c}
	defer conn.close()
	var next *getReq // received, and left for the next batch
	for {
		var ok bool
		if batch, next, ok = gatherGets(b.ctx, q, batch[:0], next, b.max); !ok {
			return
		}
		failed := b.send(conn.get(), batch, sc)
		clear(batch) // drop references to answered requests
		if failed {
			conn.drop()
		}
	}
}

// loopConn is a loop's own connection to its shard, taken from the
// client's pool once and kept: a call through the pool checks the
// connection's health with a system call every time, which costs as much
// as a small batch. A call that failed or timed out drops it (it may hold
// a late reply), and the next call takes a new one.
type loopConn struct {
	c    *redis.Client
	conn *redis.Conn
}

func (l *loopConn) get() *redis.Conn {
	if l.conn == nil {
		l.conn = l.c.Conn()
	}
	return l.conn
}

func (l *loopConn) drop() {
	l.close()
	l.conn = nil
}

func (l *loopConn) close() {
	if l.conn != nil {
		_ = l.conn.Close()
	}
}

// gather is a loop's next batch: it waits for a first request on q (ok
// false when ctx ends first), then appends to batch what else has queued,
// up to max in all.
func gather[T any](ctx context.Context, q chan T, batch []T, max int) (_ []T, ok bool) {
	select {
	case <-ctx.Done():
		return batch, false
	case req := <-q:
		batch = append(batch, req)
	}
	if len(q) == 0 {
		// Let callers that are ready to run queue theirs first: with
		// nothing else runnable this returns at once.
		runtime.Gosched()
	}
	for len(batch) < max {
		select {
		case req := <-q:
			batch = append(batch, req)
		default:
			return batch, true
		}
	}
	return batch, true
}

// gatherGets is a read loop's next batch: first (if any) or else the
// first request to arrive on q (ok false when ctx ends first), then what
// else has queued while the keys stay within max. A request that would
// take them past it is returned as next, to start the following batch.
func gatherGets(ctx context.Context, q chan *getReq, batch []*getReq, first *getReq, max int) (_ []*getReq, next *getReq, ok bool) {
	if first == nil {
		select {
		case <-ctx.Done():
			return batch, nil, false
		case first = <-q:
		}
	}
	batch = append(batch, first)
	n := len(first.keys)
	if len(q) == 0 {
		// Let callers that are ready to run queue theirs first: with
		// nothing else runnable this returns at once.
		runtime.Gosched()
	}
	for n < max {
		select {
		case req := <-q:
			if n+len(req.keys) > max {
				return batch, req, true
			}
			batch, n = append(batch, req), n+len(req.keys)
		default:
			return batch, nil, true
		}
	}
	return batch, nil, true
}

// shardConn is what send needs of a connection to a shard.
type shardConn interface {
	Get(ctx context.Context, key string) *redis.StringCmd
	MGet(ctx context.Context, keys ...string) *redis.SliceCmd
	Pipeline() redis.Pipeliner
}

// sendScratch is what a read loop reuses from one call to the next.
type sendScratch struct {
	live []*getReq
	keys []string
	vals []getResult
	cmds []*redis.StringCmd
}

// send answers batch with one call to c: a plain GET for a single key,
// an MGET or a pipeline for more, until the earliest budget among them.
// Requests whose caller has gone or whose deadline has passed are answered
// with that error and not sent. failed reports a call that failed (not a
// key found absent): the connection must not be used again.
func (b *batcher) send(c shardConn, batch []*getReq, sc *sendScratch) (failed bool) {
	now := time.Now()
	var deadline time.Time
	live, keys := sc.live[:0], sc.keys[:0]
	for _, req := range batch {
		err := req.ctx.Err()
		if err == nil && !now.Before(req.deadline) {
			err = context.DeadlineExceeded
		}
		if err != nil {
			for i := range req.out {
				req.out[i] = getResult{err: err}
			}
			req.done <- struct{}{}
			continue
		}
		if deadline.IsZero() || req.budget.Before(deadline) {
			deadline = req.budget
		}
		live, keys = append(live, req), append(keys, req.keys...)
	}
	defer func() {
		clear(live)
		clear(keys)
		sc.live, sc.keys = live[:0], keys[:0]
	}()
	if len(live) == 0 {
		return false
	}
	b.calls.Add(1)
	b.keys.Add(uint64(len(keys)))
	ctx, cancel := context.WithDeadline(b.ctx, deadline)
	defer cancel()
	vals := sc.vals[:0]
	var err error
	switch {
	case len(keys) == 1:
		var val []byte
		val, err = c.Get(ctx, keys[0]).Bytes()
		vals = append(vals, getResult{val: val, err: err})
	case b.mget:
		vals, err = sendMGet(ctx, c, keys, vals)
	default:
		vals, err = sendPipeline(ctx, c, keys, vals, sc)
	}
	k := 0
	for _, req := range live {
		k += copy(req.out, vals[k:])
		req.done <- struct{}{}
	}
	clear(vals)
	sc.vals = vals[:0]
	return err != nil && !errors.Is(err, redis.Nil)
}

// sendPipeline reads keys with a pipeline of GETs, appending a result for
// each to vals. err is the pipeline's: each result carries its own.
func sendPipeline(ctx context.Context, c shardConn, keys []string, vals []getResult, sc *sendScratch) (_ []getResult, err error) {
	p := c.Pipeline()
	cmds := sc.cmds[:0]
	for _, key := range keys {
		cmds = append(cmds, p.Get(ctx, key))
	}
	_, err = p.Exec(ctx) // every command carries its own error too
	for _, cmd := range cmds {
		val, err := cmd.Bytes()
		vals = append(vals, getResult{val: val, err: err})
	}
	clear(cmds)
	sc.cmds = cmds[:0]
	return vals, err
}

// sendMGet reads keys with one MGET, appending to vals a value for each
// key present and redis.Nil for each absent, or the call's error for all
// when it failed.
func sendMGet(ctx context.Context, c shardConn, keys []string, vals []getResult) (_ []getResult, err error) {
	got, err := c.MGet(ctx, keys...).Result()
	if err == nil && len(got) != len(keys) {
		err = fmt.Errorf("redis MGET of %d keys returned %d values", len(keys), len(got))
	}
	for i := range keys {
		if err != nil {
			vals = append(vals, getResult{err: err})
			continue
		}
		switch v := got[i].(type) {
		case string:
			// go-redis made the string for this reply alone and
			// keeps no reference: its bytes are the value's own,
			// read in place rather than copied.
			vals = append(vals, getResult{val: unsafe.Slice(unsafe.StringData(v), len(v))})
		case nil:
			vals = append(vals, getResult{err: redis.Nil})
		default:
			vals = append(vals, getResult{err: fmt.Errorf("redis MGET: value of type %T", v)})
		}
	}
	return vals, err
}

// close stops every loop and waits for them. Calls in flight return
// errClosed.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
}
