package peers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/bench/proc"
	"github.com/shardns/shardns/internal/nsdconf"
)

// NSDConf is an nsd.conf serving the root zone from zonefile on
// 127.0.0.1:port, with everything kept in dir and response rate limiting
// off (a load generator on one address would trip it).
func NSDConf(port int, dir, zonefile string) string {
	return nsdconf.Config(port, dir, nsdconf.Zone{Name: ".", File: zonefile})
}

// NSD starts nsd serving the root zone written in zonePath, one server
// process, and waits until it answers probe.
func NSD(ctx context.Context, e Env, bin, zonePath, probe string) (*Server, error) {
	dir := filepath.Join(e.Dir, "nsd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("peers: nsd: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(zonePath)
	if err != nil {
		return nil, fmt.Errorf("peers: nsd: %w", err)
	}
	conf := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(conf, []byte(NSDConf(port, dir, abs)), 0o644); err != nil {
		return nil, fmt.Errorf("peers: nsd: %w", err)
	}
	p, err := e.start("nsd", bin, "-d", "-c", conf)
	if err != nil {
		return nil, err
	}
	s := &Server{Name: "NSD", Addr: loopback(port), Procs: []*proc.Proc{p}}
	if err := WaitDNS(ctx, s, probe, dns.TypeA); err != nil {
		log, _ := os.ReadFile(nsdconf.LogPath(dir))
		s.Stop()
		return nil, fmt.Errorf("%w\nnsd log: %s", err, log)
	}
	return s, nil
}
