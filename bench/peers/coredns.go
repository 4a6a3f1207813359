package peers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/bench/proc"
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
	host, uport, err := splitLoopback(upstream.Addr)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.Dir, "coredns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("peers: coredns: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(Corefile(port, host, uport, capacity)), 0o644); err != nil {
		return nil, fmt.Errorf("peers: coredns: %w", err)
	}
	p, err := e.start("coredns", bin, "-conf", conf, "-quiet")
	if err != nil {
		return nil, err
	}
	s := &Server{Name: "CoreDNS", Addr: loopback(port), Procs: []*proc.Proc{p}}
	if err := WaitDNS(ctx, s, probe, dns.TypeA); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}
