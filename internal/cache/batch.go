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

// getReq is one caller's GET, answered once on done.
type getReq struct {
	ctx      context.Context
	key      string
	deadline time.Time      // the sooner of budget and the caller's deadline
	budget   time.Time      // the tier's budget from when it was queued
	done     chan getResult // capacity 1: the loop never blocks on it
}

type getResult struct {
	val []byte
	err error // redis.Nil for an absent key
}

func newBatcher(timeout time.Duration, maxBatch int, mget bool) *batcher {
	ctx, cancel := context.WithCancel(context.Background())
	b := &batcher{timeout: timeout, max: maxBatch, mget: mget, ctx: ctx, cancel: cancel}
	b.queues.Store(&map[*redis.Client]*shardQueues{})
	b.reqs.New = func() any { return &getReq{done: make(chan getResult, 1)} }
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
	req, res := b.enqueue(ctx, c, key, budget, deadline)
	if req != nil {
		res = b.await(ctx, req)
	}
	return res.val, res.err
}

// getMany reads keys together, keys[i] from shard cs[i] (nil: skipped,
// out[i] left as it is): each joins its shard's next batch as a get would,
// and getMany returns once every one is answered, within the same
// deadline a get has. out[i] is keys[i]'s result.
func (b *batcher) getMany(ctx context.Context, cs []*redis.Client, keys []string, out []getResult) {
	budget, deadline := b.deadlines(ctx)
	reqs := make([]*getReq, len(keys))
	for i, key := range keys {
		if cs[i] != nil {
			reqs[i], out[i] = b.enqueue(ctx, cs[i], key, budget, deadline)
		}
	}
	for i, req := range reqs {
		if req != nil {
			out[i] = b.await(ctx, req)
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

// enqueue queues key for shard c's next batch. It returns the request to
// await, or nil and the result when it could not be queued (ctx ended,
// the tier closed).
func (b *batcher) enqueue(ctx context.Context, c *redis.Client, key string, budget, deadline time.Time) (*getReq, getResult) {
	q, err := b.queue(c)
	if err != nil {
		return nil, getResult{err: err}
	}
	req := b.reqs.Get().(*getReq)
	req.ctx, req.key, req.deadline, req.budget = ctx, key, deadline, budget
	select {
	case q.gets <- req:
		return req, getResult{}
	case <-ctx.Done():
		b.release(req)
		return nil, getResult{err: ctx.Err()}
	case <-b.ctx.Done():
		b.release(req)
		return nil, getResult{err: errClosed}
	}
}

// await is the result of a queued request, or the error of ctx or of the
// tier closing first (the request then stays with the loop and is not
// reused).
func (b *batcher) await(ctx context.Context, req *getReq) getResult {
	select {
	case res := <-req.done:
		b.release(req)
		return res
	case <-ctx.Done():
		return getResult{err: ctx.Err()}
	case <-b.ctx.Done():
		return getResult{err: errClosed}
	}
}

func (b *batcher) release(req *getReq) {
	req.ctx, req.key, req.deadline, req.budget = nil, "", time.Time{}, time.Time{}
	b.reqs.Put(req)
}

// run is the loop of one shard client.
func (b *batcher) run(c *redis.Client, q chan *getReq) {
	defer b.wg.Done()
	batch := make([]*getReq, 0, b.max)
	cmds := make([]*redis.StringCmd, 0, b.max)
	conn := &loopConn{c: c}
	defer conn.close()
	for {
		var ok bool
		if batch, ok = gather(b.ctx, q, batch[:0], b.max); !ok {
			return
		}
		var failed bool
		cmds, failed = b.send(conn.get(), batch, cmds[:0])
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

// shardConn is what send needs of a connection to a shard.
type shardConn interface {
	Get(ctx context.Context, key string) *redis.StringCmd
	MGet(ctx context.Context, keys ...string) *redis.SliceCmd
	Pipeline() redis.Pipeliner
}

// send answers batch with one call to c: a plain GET for one live request,
// an MGET or a pipeline for more, until the earliest budget among them.
// Requests whose caller has gone or whose deadline has passed are answered with
// that error and not sent. failed reports a call that failed (not a key
// found absent): the connection must not be used again.
func (b *batcher) send(c shardConn, batch []*getReq, cmds []*redis.StringCmd) (_ []*redis.StringCmd, failed bool) {
	now := time.Now()
	var deadline time.Time
	live := batch[:0]
	for _, req := range batch {
		err := req.ctx.Err()
		if err == nil && !now.Before(req.deadline) {
			err = context.DeadlineExceeded
		}
		if err != nil {
			req.done <- getResult{err: err}
			continue
		}
		if deadline.IsZero() || req.budget.Before(deadline) {
			deadline = req.budget
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return cmds, false
	}
	b.calls.Add(1)
	b.keys.Add(uint64(len(live)))
	ctx, cancel := context.WithDeadline(b.ctx, deadline)
	defer cancel()
	if len(live) == 1 {
		val, err := c.Get(ctx, live[0].key).Bytes()
		live[0].done <- getResult{val: val, err: err}
		return cmds, err != nil && !errors.Is(err, redis.Nil)
	}
	if b.mget {
		return cmds, b.sendMGet(ctx, c, live)
	}
	p := c.Pipeline()
	for _, req := range live {
		cmds = append(cmds, p.Get(ctx, req.key))
	}
	_, err := p.Exec(ctx) // every command carries its own error too
	for i, req := range live {
		val, err := cmds[i].Bytes()
		req.done <- getResult{val: val, err: err}
	}
	clear(cmds)
	return cmds, err != nil && !errors.Is(err, redis.Nil)
}

// sendMGet answers live with one MGET: a value for each key present, and
// redis.Nil for each absent. It reports whether the call failed.
func (b *batcher) sendMGet(ctx context.Context, c shardConn, live []*getReq) (failed bool) {
	keys := make([]string, len(live))
	for i, req := range live {
		keys[i] = req.key
	}
	vals, err := c.MGet(ctx, keys...).Result()
	if err == nil && len(vals) != len(live) {
		err = fmt.Errorf("redis MGET of %d keys returned %d values", len(live), len(vals))
	}
	for i, req := range live {
		if err != nil {
			req.done <- getResult{err: err}
			continue
		}
		switch v := vals[i].(type) {
		case string:
			req.done <- getResult{val: []byte(v)}
		case nil:
			req.done <- getResult{err: redis.Nil}
		default:
			req.done <- getResult{err: fmt.Errorf("redis MGET: value of type %T", v)}
		}
	}
	return err != nil
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
