package server_test

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shardns/shardns/dnsd/server"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/testutil/redistest"
	"github.com/shardns/shardns/resolverd/resolve"
)

// newBatchPair is a diff pair whose common server answers batches: over
// L1 alone, or with L1 off over Redis shards.
func newBatchPair(t *testing.T, shards int) *diffPair {
	t.Helper()
	res, err := resolve.New(writeDiffZone(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &diffPair{clock: newFakeClock()}
	o := options{now: p.clock.Now, stale: time.Hour}
	if shards > 0 {
		srv := redistest.StartN(t, shards)
		addrs := make([]string, len(srv))
		for i, s := range srv {
			addrs[i] = s.Addr
		}
		tier, err := cache.NewRing(cache.RedisConfig{Addrs: addrs, Timeout: 5 * time.Second, Now: p.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tier.Close() })
		o.noL1, o.redis = true, tier
	}
	chain := newChain(o, &inProcess{r: res})
	if _, ok := chain.(lookup.BatchHandler); !ok {
		t.Fatal("the chain cannot read the cache for a batch")
	}
	p.common = server.New(server.Config{Chain: chain})
	p.general = server.GeneralOnly(server.New(server.Config{Chain: lookup.HandlerFunc(chain.Lookup)}))
	return p
}

// serveBatch answers qs through the general server, then as one batch
// through the common one (its Finish, or ServeMessage, for what the batch
// leaves), at the same instant on the same cache, or the other way round,
// and fails on any difference. It returns how many the batch answered at
// once and how many it left to a Finish.
func (p *diffPair) serveBatch(t *testing.T, qs []diffQuery, batchFirst bool) (done, finished int) {
	t.Helper()
	ms := make([]transport.BatchMsg, len(qs))
	for i, q := range qs {
		ms[i] = transport.BatchMsg{Req: q.wire, From: transport.Peer{Addr: q.from, TCP: q.tcp}}
	}
	want := make([][]byte, len(qs))
	general := func() {
		for i, q := range qs {
			want[i] = p.general.ServeMessage(t.Context(), q.wire, ms[i].From, nil)
		}
	}
	if !batchFirst {
		general()
	}
	p.common.ServeBatch(t.Context(), ms)
	got := make([][]byte, len(qs))
	for i, m := range ms {
		switch {
		case m.Done:
			got[i] = m.Reply
			done++
		case m.Finish != nil:
			got[i] = m.Finish(t.Context(), nil)
			finished++
		default:
			got[i] = p.common.ServeMessage(t.Context(), m.Req, m.From, nil)
		}
	}
	if batchFirst {
		general()
	}
	for i, q := range qs {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s (tcp %v, done %v, finish %v): the batch replied\n%x\nthe general way\n%x\nquery %x",
				q.name, q.tcp, ms[i].Done, ms[i].Finish != nil, got[i], want[i], q.wire)
		}
		if ms[i].Done && !q.plain {
			t.Fatalf("%s (%x) was answered by the batch: not of the common shape", q.name, q.wire)
		}
	}
	return done, finished
}

// A batch's replies are the general way's, byte for byte, for every kind
// of query and answer: fresh hits answered at once, the rest finished
// from the batch's cache read (misses, stale entries, failures), as
// entries age; over L1, and over four Redis shards with L1 off.
func TestBatchMatchesGeneralWay(t *testing.T) {
	for _, shards := range []int{0, 4} {
		p := newBatchPair(t, shards)
		rng := rand.New(rand.NewPCG(7, uint64(shards)))
		qs := diffQueries(t, rng, 1500)
		var done, finished int
		for round, step := range []time.Duration{0, 1400 * time.Millisecond, 400 * time.Second, 2 * time.Hour, 0} {
			p.clock.Advance(step)
			for i := 0; i < len(qs); i += 32 {
				d, f := p.serveBatch(t, qs[i:min(i+32, len(qs))], round%2 == 0)
				done, finished = done+d, finished+f
			}
		}
		t.Logf("%d shards: %d answered by the batch at once, %d finished after it", shards, done, finished)
		if done == 0 || finished == 0 {
			t.Errorf("%d shards: %d answered at once, %d finished: both ways must be taken", shards, done, finished)
		}
	}
}
