package peers

import (
	"context"
	"fmt"
	"path/filepath"
)

// Corefile is a CoreDNS configuration for a caching forwarder on
// 127.0.0.1:port: the cache plugin with room for capacity answers and as
// many denials (its default is 9984 of each, fewer than a run's
// questions), every miss forwarded to upstream (a loopback host:port),
// and errors logged. No log plugin: a line per query would be measured
// too.
func Corefile(port int, upstreamHost string, upstreamPort, capacity int) string {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    cache {
        success %d
        denial %d
    }
    forward . %s:%d
    errors
}
`, port, capacity, capacity, upstreamHost, upstreamPort)
}

// CoreDNS starts coredns as a caching forwarder to upstream and waits until
// it answers probe.
func CoreDNS(ctx context.Context, e Env, bin string, upstream *Server, capacity int, probe string) (*Server, error) {
	return e.startForwarder(ctx, forwarder{name: "coredns", label: "CoreDNS",
		setup: func(port int, dir, host string, uport int) ([]string, map[string]string) {
			conf := filepath.Join(dir, "Corefile")
			return []string{bin, "-conf", conf, "-quiet"}, map[string]string{conf: Corefile(port, host, uport, capacity)}
		}}, upstream, probe)
}
