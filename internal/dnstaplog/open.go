package dnstaplog

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/lifecycle"
)

// FromFlags opens the Logger the -dnstap flags ask for and adds its Close
// to g, so that it is flushed and closed after every part started later
// (the DNS server, the resolver) has stopped. It returns nil, and adds
// nothing, when -dnstap is empty.
func FromFlags(g *lifecycle.Group, f config.DnstapOutput, reg prometheus.Registerer, log *slog.Logger) (*Logger, error) {
	if f.Dnstap == "" {
		return nil, nil
	}
	l, err := Open(Config{Target: f.Dnstap, Identity: f.DnstapIdentity, Version: f.DnstapVersion, Registerer: reg, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := g.OnClose("dnstap", l.Close); err != nil {
		return nil, err
	}
	log.Info("dnstap on", "target", f.Dnstap)
	return l, nil
}
