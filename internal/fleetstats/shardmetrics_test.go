package fleetstats

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// shardSeries gathers reg and returns each shardns_redis_shard_* value by
// metric name and shard.
func shardSeries(t *testing.T, reg *prometheus.Registry) map[string]map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if out[mf.GetName()] == nil {
				out[mf.GetName()] = map[string]float64{}
			}
			v := m.GetGauge().GetValue()
			if mf.GetType() == dto.MetricType_COUNTER {
				v = m.GetCounter().GetValue()
			}
			out[mf.GetName()][label(m, "shard")] = v
		}
	}
	return out
}

// The collector exports each live shard's keys, memory and evictions as
// Redis counts them, and a killed or paused shard as down, within the
// shard deadline.
func TestShardCollector(t *testing.T) {
	srv := redistest.StartN(t, 3, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
	r, err := cache.NewRing(cache.RedisConfig{Addrs: redistest.Addrs(srv)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	live := srv[0]
	c := newClient(t, live.Addr)
	for i := range 25 {
		if err := c.Set(t.Context(), fmt.Sprint("k", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewShardCollector(r.Shards(), r.ForEachShard))

	got := shardSeries(t, reg)
	for _, s := range srv {
		if got["shardns_redis_shard_up"][s.Addr] != 1 || got["shardns_redis_shard_max_memory_bytes"][s.Addr] != 64<<20 ||
			got["shardns_redis_shard_memory_bytes"][s.Addr] <= 0 {
			t.Errorf("live %s: %v", s.Addr, got)
		}
		if _, ok := got["shardns_redis_shard_evicted_keys_total"][s.Addr]; !ok {
			t.Errorf("%s: no evicted_keys_total", s.Addr)
		}
	}
	if n := got["shardns_redis_shard_keys"][live.Addr]; n != 25 {
		t.Errorf("%s holds %v keys, want 25", live.Addr, n)
	}

	srv[1].Kill()
	srv[2].Pause()
	t.Cleanup(srv[2].Resume)
	start := time.Now()
	got = shardSeries(t, reg)
	if d := time.Since(start); d > ShardTimeout+time.Second {
		t.Errorf("a scrape with a paused shard took %v", d)
	}
	for _, s := range srv[1:] {
		if up, ok := got["shardns_redis_shard_up"][s.Addr]; !ok || up != 0 {
			t.Errorf("down %s: up %v (listed %v)", s.Addr, up, ok)
		}
		if _, ok := got["shardns_redis_shard_keys"][s.Addr]; ok {
			t.Errorf("down %s exports a key count", s.Addr)
		}
	}
	if got["shardns_redis_shard_up"][live.Addr] != 1 || got["shardns_redis_shard_keys"][live.Addr] != 25 {
		t.Errorf("live %s among down ones: %v", live.Addr, got)
	}
}
