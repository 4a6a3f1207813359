package frontend

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/fleetstats"
)

// PublishStats publishes this frontend's counters (read from g) to the
// Redis tier every few seconds until ctx ends, so any cacheapi's /stats
// shows the whole fleet. It returns a function that waits for the
// publisher to stop (it deletes its entry on the way out); without Redis it
// does nothing.
func (f *Frontend) PublishStats(ctx context.Context, kind string, g prometheus.Gatherer, log *slog.Logger) (wait func()) {
	if f.Redis == nil {
		return func() {}
	}
	p := fleetstats.NewPublisher(fleetstats.PublisherConfig{
		Redis: f.Redis.Client(), Kind: kind, Gatherer: g, Logger: log,
	})
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	return func() { <-done }
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
