package frontend

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/fleetstats"
	"github.com/shardns/shardns/internal/lifecycle"
)

// StatsPublisher is the loop that keeps this frontend's stats: it takes
// the readings of the process's own numbers (fleetstats.Local, for
// /stats) and, with Redis, publishes the lookup counters (read from g) to
// the Redis tier every few seconds, so any cacheapi's /stats shows the
// whole fleet; on its way out it deletes its entry. kind ("dnsd",
// "cacheapi") names the process in both. The daemon adds it to its group
// after the frontend, so it stops while the Redis tier is still open.
func (f *Frontend) StatsPublisher(kind string, g prometheus.Gatherer, log *slog.Logger) lifecycle.Part {
	if f.local == nil { // not made by Build
		return lifecycle.Part{}
	}
	f.local.SetKind(kind)
	if f.Redis == nil {
		return lifecycle.Part{Run: func(ctx context.Context) error { f.local.Run(ctx); return nil }}
	}
	p := fleetstats.NewPublisher(fleetstats.PublisherConfig{
		Redis: f.Redis.Client(), Kind: kind, Gatherer: g, Logger: log,
	})
	return lifecycle.Part{Run: func(ctx context.Context) error {
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			f.local.Run(ctx)
		}()
		p.Run(ctx)
		<-sampled
		return nil
	}}
}

// StatsSource is what /stats reads: the process's own numbers (its L1
// and its lookups), and with Redis the fleet's published counters and
// each shard's own INFO.
func (f *Frontend) StatsSource() fleetstats.Sources {
	src := fleetstats.Sources{Local: f.local}
	if f.Redis == nil {
		return src
	}
	r := &fleetstats.Reader{Client: f.Redis.Client(), EachShard: f.Redis.ForEachShard}
	if !f.Redis.IsCluster() {
		r.ShardAddrs = f.Redis.Shards()
	}
	src.Fleet = r
	return src
}

// newLocalStats builds the process's own stats over the built chain and
// L1, and registers the L1's size and churn and, with Redis, each shard's
// numbers (read at scrape time) on reg (nil: not registered).
func (f *Frontend) newLocalStats(fl Flags, reg prometheus.Registerer) {
	cfg := fleetstats.LocalConfig{Gatherer: f.Chain.Gatherer()}
	if f.L1 != nil {
		cfg.L1, cfg.L1MaxEntries, cfg.L1MaxBytes = f.L1, fl.L1, fl.L1Bytes
	}
	f.local = fleetstats.NewLocal(cfg)
	if reg == nil {
		return
	}
	if l1 := f.L1; l1 != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: "shardns", Subsystem: "l1", Name: "entries",
				Help: "Entries the in-process cache (L1) holds, expired ones not yet removed included.",
			}, func() float64 { return float64(l1.Len()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: "shardns", Subsystem: "l1", Name: "bytes",
				Help: "Bytes the in-process cache (L1) holds, as counted against -l1-bytes.",
			}, func() float64 { return float64(l1.Bytes()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: "shardns", Subsystem: "l1", Name: "evictions_total",
				Help: "Entries the in-process cache (L1) pushed out to keep within -l1 or -l1-bytes.",
			}, func() float64 { return float64(l1.Evictions()) }),
		)
	}
	if f.Redis != nil {
		addrs := f.Redis.Shards()
		if f.Redis.IsCluster() {
			addrs = nil
		}
		reg.MustRegister(fleetstats.NewShardCollector(addrs, f.Redis.ForEachShard))
	}
}
