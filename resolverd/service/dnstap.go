package service

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/dnstaplog"
	"github.com/shardns/shardns/internal/lifecycle"
	"github.com/shardns/shardns/resolverd/forward"
)

// dnstapOf opens the -dnstap log of the queries to upstreams, closed in g
// after every part started later; nil when -dnstap is off.
func dnstapOf(g *lifecycle.Group, f config.DnstapOutput, reg prometheus.Registerer, log *slog.Logger) (forward.Tap, error) {
	l, err := dnstaplog.FromFlags(g, f, reg, log)
	if l == nil || err != nil {
		return nil, err
	}
	return l, nil
}
