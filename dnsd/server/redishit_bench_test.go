package server_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// BenchmarkUDPRedisHit is a hit from four real Redis shards with L1 off,
// over real UDP on loopback from parallel clients, each keeping several
// queries in flight so that reads carry batches: the reader's call, the
// worker's one read per shard (MGET), the entry checks and the replies'
// write, as dnsd runs them. The upstream is asked once per name, before
// the timer starts.
func BenchmarkUDPRedisHit(b *testing.B) {
	const (
		names    = 64
		inFlight = 8 // per client
	)
	rs := redistest.StartN(b, 4)
	tier, err := cache.NewRing(cache.RedisConfig{Addrs: redistest.Addrs(rs), Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tier.Close() })
	auth := startAuth(b)
	_, udp, _ := startServer(b, newChain(options{noL1: true, redis: tier}, newResolver(b, auth.addr, 0)), 0)
	qs := make([]*dns.Msg, names)
	for i := range qs {
		qs[i] = query("h"+strconv.Itoa(i)+".example.com.", dns.TypeA, uint16(i))
		if r, err := dns.Exchange(qs[i], udp); err != nil || r.Rcode != dns.RcodeSuccess {
			b.Fatalf("warming %s: %v, %v", qs[i].Question[0].Name, r, err)
		}
	}
	for i := range qs { // written behind the answers: wait for every one
		deadline := time.Now().Add(5 * time.Second)
		key := "dns:{h" + strconv.Itoa(i) + ".example.com.}:A:IN"
		for {
			n, err := tier.Client().Exists(b.Context(), key).Result()
			if err == nil && n == 1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s never reached Redis", key)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	asked := auth.Total()
	var next atomic.Uint32
	b.SetParallelism(4) // clients per CPU
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		co, err := dns.DialTimeout("udp", udp, clientTimeout)
		if err != nil {
			b.Error(err)
			return
		}
		defer co.Close()
		pending := 0
		send := func() bool {
			i := next.Add(1)
			q := qs[i%names].Copy()
			q.Id = uint16(i)
			_ = co.SetWriteDeadline(time.Now().Add(clientTimeout))
			if err := co.WriteMsg(q); err != nil {
				b.Error(err)
				return false
			}
			pending++
			return true
		}
		recv := func() bool {
			_ = co.SetReadDeadline(time.Now().Add(clientTimeout))
			r, err := co.ReadMsg()
			if err != nil {
				b.Error(err)
				return false
			}
			pending--
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				b.Errorf("reply %d: rcode %d, %d answers", r.Id, r.Rcode, len(r.Answer))
				return false
			}
			return true
		}
		for pb.Next() {
			if pending == inFlight && !recv() {
				return
			}
			if !send() {
				return
			}
		}
		for pending > 0 && recv() {
		}
	})
	b.StopTimer()
	if n := auth.Total() - asked; n != 0 {
		b.Fatalf("upstream asked %d times during the hits, want none", n)
	}
}
