package server_test

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shardns/shardns/dnsd/server"
	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/cache"
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
	p.common = server.New(server.Config{Chain: chain})
	p.general = server.New(server.Config{Chain: chain})
	return p
}

// serveBatch answers qs through the general way, then as one read through
// the common server, as the transport calls it (the reader's call, a wait
// call on what it left, then a call of its own for each message that one
// left), at the same instant on the same cache, or the other way round,
// and fails on any difference. It returns how many the reader's call and
// the wait call on several answered, and how many were left to calls of
// their own.
func (p *diffPair) serveBatch(t *testing.T, qs []diffQuery, batchFirst bool) (done, finished int) {
	t.Helper()
	ms := make([]transport.Msg, len(qs))
	for i, q := range qs {
		ms[i] = transport.Msg{Req: q.wire, From: transport.Peer{Addr: q.from, TCP: q.tcp}}
	}
	want := make([][]byte, len(qs))
	general := func() {
		for i, q := range qs {
			want[i] = p.general.ServeGeneral(t.Context(), q.wire, ms[i].From, nil)
		}
	}
	if !batchFirst {
		general()
	}
	p.common.Serve(t.Context(), ms, false)
	var left []int
	for i := range ms {
		if ms[i].Done {
			done++
		} else {
			left = append(left, i)
		}
	}
	group := make([]transport.Msg, len(left))
	for j, i := range left {
		group[j] = ms[i]
	}
	p.common.Serve(t.Context(), group, true)
	for j, i := range left {
		m := group[j]
		if !m.Done {
			if len(group) == 1 {
				t.Fatalf("%s: a wait call on one message left it", qs[i].name)
			}
			one := []transport.Msg{m}
			p.common.Serve(t.Context(), one, true)
			m = one[0]
			finished++
		} else if len(group) > 1 {
			done++
		} else {
			finished++
		}
		if !m.Done {
			t.Fatalf("%s: left by a wait call on it alone", qs[i].name)
		}
		ms[i] = m
	}
	if batchFirst {
		general()
	}
	for i, q := range qs {
		if !bytes.Equal(ms[i].Reply, want[i]) {
			t.Fatalf("%s (tcp %v): the batch replied\n%x\nthe general way\n%x\nquery %x",
				q.name, q.tcp, ms[i].Reply, want[i], q.wire)
		}
	}
	return done, finished
}

// A batch's replies are the general way's, byte for byte, for every kind
// of query and answer: fresh hits answered at once, the rest finished
// from the batch's cache read (misses, stale entries, failures) in calls
// of their own, as entries age; over L1, and over four Redis shards with
// L1 off.
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
