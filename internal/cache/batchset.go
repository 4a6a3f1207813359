package cache

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// setQueueLen bounds the writes waiting for one shard's write loop; a
// write beyond it fails at once rather than wait (errWriteBusy).
const setQueueLen = 4096

// errWriteBusy is a write refused because its shard's queue was full.
var errWriteBusy = errors.New("redis write queue full")

// setReq is one SET for a shard's write loop; done is called once with
// the outcome, on the loop's goroutine.
type setReq struct {
	key  string
	val  []byte
	ttl  time.Duration
	done func(error)
}

// set queues SET key val PX ttl on shard c and returns at once: the write
// goes out in c's write loop's next pipeline, with the writes queued with
// it, and done gets its outcome. A full queue or a closed tier fails it at
// once.
func (b *batcher) set(c *redis.Client, key string, val []byte, ttl time.Duration, done func(error)) {
	q, err := b.queue(c)
	if err != nil {
		done(err)
		return
	}
	select {
	case q.sets <- &setReq{key: key, val: val, ttl: ttl, done: done}:
	default:
		done(errWriteBusy)
	}
}

// runSets is the write loop of one shard client: like run, it sends what
// has queued while its previous pipeline was in flight, at most max
// writes, on a connection of its own. When the tier closes it sends what
// is still queued, then stops.
func (b *batcher) runSets(c *redis.Client, q chan *setReq) {
	defer b.wg.Done()
	batch := make([]*setReq, 0, b.max)
	conn := &loopConn{c: c}
	defer conn.close()
	for {
		var ok bool
		if batch, ok = gather(b.ctx, q, batch[:0], b.max); !ok {
			b.flushSets(c, q, batch)
			return
		}
		// Not b.ctx: a write taken just before Close still goes out.
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		b.setCalls.Add(1)
		failed := sendSets(ctx, conn.get(), batch)
		cancel()
		clear(batch)
		if failed {
			conn.drop()
		}
	}
}

// flushSets sends the writes still queued when the tier closes, within
// one budget, through c's pool.
func (b *batcher) flushSets(c *redis.Client, q chan *setReq, batch []*setReq) {
	batch = batch[:0]
	for {
		select {
		case req := <-q:
			batch = append(batch, req)
			continue
		default:
		}
		break
	}
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	sendSets(ctx, c, batch)
}

// sendSets writes batch in one pipeline and calls each request's done
// with its outcome. It reports whether the call failed.
func sendSets(ctx context.Context, c shardConn, batch []*setReq) (failed bool) {
	p := c.Pipeline()
	cmds := make([]*redis.StatusCmd, len(batch))
	for i, req := range batch {
		cmds[i] = p.Set(ctx, req.key, req.val, req.ttl)
	}
	_, err := p.Exec(ctx)
	for i, req := range batch {
		req.done(cmds[i].Err())
	}
	return err != nil
}
