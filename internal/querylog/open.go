package querylog

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/lifecycle"
)

// FromFlags opens the Logger the -query-log flags ask for and adds its
// Close to g, so that it is flushed and closed after every part started
// later (the DNS server) has stopped. It returns nil, and adds nothing,
// when -query-log is empty.
func FromFlags(g *lifecycle.Group, f config.QueryLogOutput, reg prometheus.Registerer, log *slog.Logger) (*Logger, error) {
	if f.QueryLog == "" {
		return nil, nil
	}
	l, err := Open(Config{Path: f.QueryLog, Sample: f.QueryLogSample, Registerer: reg, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := g.OnClose("query log", l.Close); err != nil {
		return nil, err
	}
	log.Info("query log on", "file", f.QueryLog, "sample", max(f.QueryLogSample, 1))
	return l, nil
}
