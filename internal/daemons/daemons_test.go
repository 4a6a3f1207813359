package daemons

import (
	"flag"
	"slices"
	"testing"

	cacheapi "github.com/shardns/shardns/cacheapi/app"
	dnsd "github.com/shardns/shardns/dnsd/app"
	"github.com/shardns/shardns/internal/config"
	resolverd "github.com/shardns/shardns/resolverd/service"
)

// restartOnly are flags no daemon may change live: the sockets it holds
// and the Redis clients it built.
var restartOnly = []string{"listen", "redis", "redis-cluster", "resolver", "queue-redis", "http", "metrics", "pprof", "log-format", "workers"}

// Every daemon's Reloadable flags are flags it has, include -log-level,
// and leave out what needs a restart.
func TestReloadable(t *testing.T) {
	for name, d := range map[string]config.Daemon{"dnsd": &dnsd.Config{}, "resolverd": &resolverd.Config{}, "cacheapi": &cacheapi.Config{}} {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		d.Register(fs)
		live := d.Reloadable()
		if !slices.Contains(live, config.LogLevelFlag) {
			t.Errorf("%s: -log-level is not Reloadable", name)
		}
		for _, f := range live {
			if fs.Lookup(f) == nil {
				t.Errorf("%s: Reloadable names -%s, which it does not have", name, f)
			}
		}
		for _, f := range restartOnly {
			if slices.Contains(live, f) {
				t.Errorf("%s: -%s is Reloadable; it needs a restart", name, f)
			}
		}
	}
}

// The schema knows the three daemons; -listen is per daemon, the flags of
// the shared groups are not.
func TestSchema(t *testing.T) {
	s := Schema()
	if got := s.Daemons(); !slices.Equal(got, []string{"cacheapi", "dnsd", "resolverd"}) {
		t.Errorf("Daemons %v", got)
	}
	if !s.PerDaemon("listen") {
		t.Error("-listen is not per daemon")
	}
	for _, f := range []string{"redis", "upstream", "zones", "stale", "log-level", "allow", "drain-timeout", "metrics"} {
		if s.PerDaemon(f) {
			t.Errorf("-%s is per daemon; it is a shared flag", f)
		}
	}
}
