package fleetstats

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// ShardCollector exports each cache shard's own numbers, as /stats shows
// them, as Prometheus metrics labelled by shard address. It reads the
// shards at scrape time (PING, DBSIZE and INFO in one round trip each,
// concurrently), within ShardTimeout: a down or slow shard is exported as
// shardns_redis_shard_up 0 and without its other series, and never holds
// the scrape longer than that.
type ShardCollector struct {
	addrs []string
	each  ForEachShardFunc

	up, keys, memory, maxMemory, evicted, expired *prometheus.Desc
}

// NewShardCollector returns a collector over the shards each visits;
// addrs are the shards expected (see ReadShards).
func NewShardCollector(addrs []string, each ForEachShardFunc) *ShardCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("shardns_redis_shard_"+name, help, []string{"shard"}, nil)
	}
	return &ShardCollector{
		addrs:     addrs,
		each:      each,
		up:        desc("up", "1 when the cache shard answered PING at this scrape, else 0."),
		keys:      desc("keys", "Keys the cache shard holds (DBSIZE)."),
		memory:    desc("memory_bytes", "Memory the cache shard uses (INFO used_memory)."),
		maxMemory: desc("max_memory_bytes", "The cache shard's maxmemory; 0: no limit."),
		evicted:   desc("evicted_keys_total", "Keys the cache shard evicted for maxmemory since it started (INFO evicted_keys)."),
		expired:   desc("expired_keys_total", "Keys that expired on the cache shard since it started (INFO expired_keys)."),
	}
}

// Describe sends the metrics' descriptions.
func (c *ShardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.keys, c.memory, c.maxMemory, c.evicted, c.expired} {
		ch <- d
	}
}

// Collect reads every shard and sends its series.
func (c *ShardCollector) Collect(ch chan<- prometheus.Metric) {
	shards, err := ReadShards(context.Background(), c.addrs, c.each)
	if err != nil {
		// Not one shard listed: each expected one is down.
		for _, a := range c.addrs {
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0, a)
		}
		return
	}
	for _, s := range shards {
		if !s.Up {
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0, s.Addr)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1, s.Addr)
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(s.Keys), s.Addr)
		ch <- prometheus.MustNewConstMetric(c.memory, prometheus.GaugeValue, float64(s.UsedMemory), s.Addr)
		ch <- prometheus.MustNewConstMetric(c.maxMemory, prometheus.GaugeValue, float64(s.MaxMemory), s.Addr)
		ch <- prometheus.MustNewConstMetric(c.evicted, prometheus.CounterValue, float64(s.EvictedKeys), s.Addr)
		ch <- prometheus.MustNewConstMetric(c.expired, prometheus.CounterValue, float64(s.ExpiredKeys), s.Addr)
	}
}
