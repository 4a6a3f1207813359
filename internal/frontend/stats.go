package frontend

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/fleetstats"
	"github.com/shardns/shardns/internal/lifecycle"
)

// StatsPublisher is the loop that publishes this frontend's counters
// (read from g) to the Redis tier every few seconds, so any cacheapi's
// /stats shows the whole fleet; on its way out it deletes its entry.
// Without Redis it is an empty part. The daemon adds it to its group after
// the frontend, so it stops while the Redis tier is still open.
func (f *Frontend) StatsPublisher(kind string, g prometheus.Gatherer, log *slog.Logger) lifecycle.Part {
	if f.Redis == nil {
		return lifecycle.Part{}
	}
	p := fleetstats.NewPublisher(fleetstats.PublisherConfig{
		Redis: f.Redis.Client(), Kind: kind, Gatherer: g, Logger: log,
	})
	return lifecycle.Part{Run: func(ctx context.Context) error { p.Run(ctx); return nil }}
}

// StatsSource reads the fleet's published counters and each shard's own
// INFO, for cacheapi's /stats; nil without Redis.
func (f *Frontend) StatsSource() *fleetstats.Reader {
	if f.Redis == nil {
		return nil
	}
	r := &fleetstats.Reader{Client: f.Redis.Client(), EachShard: f.Redis.ForEachShard}
	if !f.Redis.IsCluster() {
		r.ShardAddrs = f.Redis.Shards()
	}
	return r
}
